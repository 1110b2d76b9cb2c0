#pragma once
// Random appearance of a synthetic person: a skin tone, hair, and clothing
// colors per body Region, with a little per-vertex variation so surfaces are
// not flat.
#include <span>
#include <vector>

#include "metro/body/body_model.hpp"
#include "metro/core/random.hpp"
#include "metro/render/background.hpp"
#include "metro/render/image.hpp"

namespace metro::render {

struct Outfit {
  Color skin, hair, eye, nose, mouth, shirt_front, shirt_back, collar, trousers, shoe;
};

inline Color scaled(Color c, float factor) noexcept { return {c.r * factor, c.g * factor, c.b * factor}; }

inline Outfit random_outfit(Generator& rng) {
  Outfit o;
  // Skin tones between a dark and a light reference, slightly warm or cool.
  o.skin = mix(Color{0.36f, 0.23f, 0.15f}, Color{0.96f, 0.80f, 0.68f}, rng.uniform<float>());
  o.skin.g *= rng.uniform(0.95f, 1.03f);
  const Color hair_palette[] = {{0.05f, 0.04f, 0.03f}, {0.25f, 0.15f, 0.08f}, {0.55f, 0.40f, 0.20f},
                                {0.75f, 0.62f, 0.35f}, {0.45f, 0.18f, 0.08f}, {0.6f, 0.6f, 0.6f}};
  o.hair = hair_palette[rng.randint(0, std::size(hair_palette))];
  o.eye = scaled(o.hair, 0.3f);
  o.nose = scaled(o.skin, 0.88f);
  o.mouth = {o.skin.r * 0.8f, o.skin.g * 0.45f, o.skin.b * 0.45f};
  o.shirt_front = random_tinted_color(rng, 0.25f, 1.0f);
  o.shirt_back = scaled(o.shirt_front, rng.uniform(0.85f, 1.0f));
  o.collar = rng.uniform<float>() < 0.5f ? scaled(o.shirt_front, 0.7f) : random_tinted_color(rng, 0.3f, 1.0f);
  o.trousers = random_tinted_color(rng, 0.1f, 0.7f);
  o.shoe = random_tinted_color(rng, 0.05f, 0.35f);
  return o;
}

inline Color region_color(const Outfit& o, body::Region region) noexcept {
  using body::Region;
  switch (region) {
    case Region::hair: return o.hair;
    case Region::eye: return o.eye;
    case Region::nose: return o.nose;
    case Region::mouth: return o.mouth;
    case Region::shirt_front: return o.shirt_front;
    case Region::shirt_back: return o.shirt_back;
    case Region::collar: return o.collar;
    case Region::trousers: return o.trousers;
    case Region::shoe: return o.shoe;
    default: return o.skin;  // skin, hand
  }
}

// Per-vertex colors: the region's color times a small random factor (+-6%).
inline std::vector<Color> vertex_colors(std::span<const body::Region> regions, const Outfit& outfit, Generator& rng) {
  const std::uint64_t first = rng.reserve(regions.size());
  std::vector<Color> colors(regions.size());
  for (std::size_t v = 0; v < regions.size(); ++v) {
    colors[v] = scaled(region_color(outfit, regions[v]), 0.94f + 0.12f * rng.uniform_at<float>(first + v));
  }
  return colors;
}

}  // namespace metro::render
