// Core tests: tensor creation, views, elementwise ops with broadcasting,
// reductions, matmul, indexing, the autograd tape, and a float64 gradient check
// for every differentiable op.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <functional>
#include <thread>
#include <utility>

#include "metro/tensor.hpp"
#include "support/bf16.hpp"

using namespace metro;
using Vec = std::vector<double>;

namespace {

template <class T>
void check_values(const Tensor<T, cpu>& t, const std::vector<T>& expected, double tol = 1e-6) {
  const std::vector<T> got = t.to_vector();
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(static_cast<double>(got[i]) == doctest::Approx(static_cast<double>(expected[i])).epsilon(tol));
}

TensorD random(const Shape& shape, std::uint64_t seed, double low = -1, double high = 1) {
  Generator gen(seed);
  return rand<double>(shape, gen, low, high);
}

// gradcheck with a readable failure message.
template <class F>
void check_gradient(F f, const std::vector<TensorD>& inputs, double atol = 1e-6) {
  const GradcheckResult r = gradcheck(f, inputs, 1e-6, atol, 1e-4);
  INFO(r.report);
  CHECK(r.passed);
}

template <class F>
std::string error_message(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_SUITE("creation") {
  TEST_CASE("zeros, ones, full, arange, linspace, eye") {
    check_values(zeros<float>({2, 3}), std::vector<float>(6, 0.f));
    check_values(ones<double>({4}), Vec(4, 1.0));
    check_values(full<float>({2}, 7.5f), {7.5f, 7.5f});
    check_values(arange<float>(0, 5), {0, 1, 2, 3, 4});
    check_values(arange<double>(1, 2, 0.25), {1, 1.25, 1.5, 1.75});
    check_values(linspace<double>(0, 1, 5), {0, 0.25, 0.5, 0.75, 1});
    check_values(eye<float>(2), {1, 0, 0, 1});
    CHECK(tensor<float>({{1, 2, 3}, {4, 5, 6}}).shape() == Shape{2, 3});
    CHECK(zeros<float>({}).numel() == 1);
  }

  TEST_CASE("random fills are reproducible and independent of the thread count") {
    Generator a(42), b(42);
    const auto x = randn<float>({1000}, a);
    const auto y = randn<float>({1000}, b);
    CHECK(x.to_vector() == y.to_vector());
    const auto u = rand<double>({200000}, a);
    const double m = mean(u).item();
    CHECK(m == doctest::Approx(0.5).epsilon(0.01));
    const auto n = randn<double>({200000}, a);
    CHECK(mean(n).item() == doctest::Approx(0.0).epsilon(0.01).scale(1));
    CHECK(var(n).item() == doctest::Approx(1.0).epsilon(0.02));
    const auto r = randint<std::int64_t>(3, 7, {1000}, a);
    for (auto v : r.to_vector()) CHECK((v >= 3 && v < 7));
    const auto bern = bernoulli<float>({100000}, 0.3, a);
    CHECK(mean(bern).item() == doctest::Approx(0.3).epsilon(0.03));
    // Same seed, same values whatever the thread count (single-thread fill in another thread).
    std::vector<float> single;
    std::thread([&] {
      Generator g(42);
      single = randn<float>({1000}, g).to_vector();
    }).join();
    CHECK(single == x.to_vector());
  }

  TEST_CASE("uniform_below_at decides exactly as uniform_at<double> < p") {
    const Generator g(7);
    for (double p : {0.0, 1e-17, 0.1, 0.3, 0.5, 0.9, 1 - 1e-16, 1.0, 0x1p-53, 3 * 0x1p-53}) {
      const std::uint64_t threshold = unit_threshold(p);
      for (std::uint64_t i = 0; i < 20000; ++i) REQUIRE(g.uniform_below_at(i, threshold) == (g.uniform_at<double>(i) < p));
    }
    // At the boundary itself: a position whose value is exactly p is not below p.
    const double at = g.uniform_at<double>(5);
    CHECK_FALSE(g.uniform_below_at(5, unit_threshold(at)));
    CHECK(g.uniform_below_at(5, unit_threshold(std::nextafter(at, 1.0))));
  }

  TEST_CASE("creation errors name the op") {
    CHECK(error_message([] { from_vector<float>({1, 2, 3}, {2, 2}); }) == "from_vector: 3 values for shape (2, 2)");
    CHECK(error_message([] { arange<float>(0, 1, 0); }) == "arange: step must not be zero");
  }
}

TEST_SUITE("views") {
  TEST_CASE("reshape, permute, transpose share storage") {
    const auto x = arange<float>(0, 24).reshape({2, 3, 4});
    const auto p = x.permute({2, 0, 1});
    CHECK(p.shape() == Shape{4, 2, 3});
    CHECK(p.shares_storage_with(x));
    CHECK(!p.is_contiguous());
    CHECK(p.at({1, 1, 2}) == x.at({1, 2, 1}));
    const auto t = x.transpose(0, 2);
    CHECK(t.at({3, 2, 1}) == x.at({1, 2, 3}));
    CHECK(x.reshape({-1, 4}).shape() == Shape{6, 4});
    CHECK(x.flatten().shape() == Shape{24});
    CHECK(x.flatten(1).shape() == Shape{2, 12});
    // reshape of a non-contiguous view copies into the logical order
    check_values(transpose(arange<float>(0, 6).reshape({2, 3}), 0, 1).reshape({6}), {0, 3, 1, 4, 2, 5});
  }

  TEST_CASE("slice, narrow, select, expand, squeeze, unsqueeze") {
    const auto x = arange<float>(0, 12).reshape({3, 4});
    check_values(x.narrow(1, 1, 2), {1, 2, 5, 6, 9, 10});
    check_values(slice(x, 1, 0, 4, 2), {0, 2, 4, 6, 8, 10});
    check_values(x.select(0, 2), {8, 9, 10, 11});
    check_values(x.select(1, -1), {3, 7, 11});
    const auto e = tensor<float>({1, 2}).reshape({2, 1}).expand({2, 3});
    check_values(e, {1, 1, 1, 2, 2, 2});
    CHECK(e.stride(1) == 0);
    CHECK(x.unsqueeze(1).shape() == Shape{3, 1, 4});
    CHECK(x.unsqueeze(-1).shape() == Shape{3, 4, 1});
    CHECK(x.unsqueeze(1).squeeze(1).shape() == Shape{3, 4});
    // a write through a view is visible in the base
    fill_(x.narrow(0, 1, 1), 100.f);
    CHECK(x.at({1, 3}) == 100.f);
    CHECK(contiguous(x).is_same(x));
  }

  TEST_CASE("view errors name the op and shapes") {
    const auto x = zeros<float>({2, 3});
    CHECK(error_message([&] { x.reshape({4, 2}); }) == "reshape: cannot view (2, 3) (6 elements) as (4, 2)");
    CHECK(error_message([&] { x.expand({3, 3}); }) == "expand: cannot expand (2, 3) to (3, 3) (dim 0)");
    CHECK(error_message([&] { x.permute({0}); }) == "permute: 1 dims given for a tensor of shape (2, 3)");
    CHECK(error_message([&] { x.select(1, 3); }) == "select: index 3 out of range for dim 1 of shape (2, 3)");
    CHECK(error_message([&] { x.sum({2}); }) == "sum: dim 2 out of range for rank 2");
  }
}

TEST_SUITE("elementwise") {
  TEST_CASE("forward values") {
    const auto a = tensor<double>({-2, -0.5, 0.5, 3});
    check_values(neg(a), {2, 0.5, -0.5, -3});
    check_values(abs(a), {2, 0.5, 0.5, 3});
    check_values(relu(a), {0, 0, 0.5, 3});
    check_values(exp(a), {std::exp(-2.0), std::exp(-0.5), std::exp(0.5), std::exp(3.0)});
    check_values(clamp(a, -1.0, 1.0), {-1, -0.5, 0.5, 1});
    check_values(sigmoid(a), {1 / (1 + std::exp(2.0)), 1 / (1 + std::exp(0.5)), 1 / (1 + std::exp(-0.5)), 1 / (1 + std::exp(-3.0))});
    check_values(tanh(a), {std::tanh(-2.0), std::tanh(-0.5), std::tanh(0.5), std::tanh(3.0)});
    // GELU (erf form): values from PyTorch's torch.nn.functional.gelu
    check_values(gelu(a), {-0.04550026389635842, -0.15426876936299344, 0.34573123063700656, 2.99595030590511}, 1e-12);
    const auto p = tensor<double>({1, 4, 9});
    check_values(sqrt(p), {1, 2, 3});
    check_values(log(p), {0, std::log(4.0), std::log(9.0)});
    check_values(pow(p, 0.5), {1, 2, 3});
    check_values(pow(p, tensor<double>({2, 0.5, 1})), {1, 2, 9});
    check_values(where(tensor<double>({1, 0, 1}), p, neg(p)), {1, -4, 9});
    check_values(gt(p, 3.0), {0, 1, 1});
    check_values(eq(p, tensor<double>({1, 0, 9})), {1, 0, 1});
    check_values(p * 2.0 + 1.0, {3, 9, 19});
    check_values(1.0 - p, {0, -3, -8});
    check_values(36.0 / p, {36, 9, 4});
    check_values(p / 2.0, {0.5, 2, 4.5});
  }

  TEST_CASE("broadcasting follows NumPy") {
    const auto a = arange<float>(0, 6).reshape({2, 3});
    const auto row = tensor<float>({10, 20, 30});
    const auto col = tensor<float>({{100}, {200}});
    check_values(a + row, {10, 21, 32, 13, 24, 35});
    check_values(a + col, {100, 101, 102, 203, 204, 205});
    check_values(row + col, {110, 120, 130, 210, 220, 230});
    CHECK((zeros<float>({4, 1, 3}) + zeros<float>({2, 1})).shape() == Shape{4, 2, 3});
    CHECK(error_message([&] { a + tensor<float>({1, 2}); }) ==
          "add: shapes (2, 3) and (2) cannot be broadcast (dim 1: 3 vs 2)");
  }

  TEST_CASE("non-contiguous inputs give the same result as contiguous copies") {
    const auto x = random({5, 7}, 1).transpose(0, 1);
    const auto y = random({7, 5}, 2);
    CHECK(!x.is_contiguous());
    check_values(x * y, (x.contiguous() * y).to_vector(), 1e-12);
    const auto s = slice(random({6, 9}, 3), 1, 1, 9, 2);
    check_values(exp(s), exp(s.contiguous()).to_vector(), 1e-12);
  }

  TEST_CASE("large elementwise ops run in parallel and match a serial loop") {
    const auto a = random({1 << 20}, 4), b = random({1 << 20}, 5);
    const auto c = a * b;
    const auto av = a.to_vector(), bv = b.to_vector(), cv = c.to_vector();
    std::size_t mismatches = 0;
    for (std::size_t i = 0; i < av.size(); ++i) mismatches += cv[i] != av[i] * bv[i];
    CHECK(mismatches == 0);
  }
}

TEST_SUITE("reductions") {
  TEST_CASE("sum, mean, var, norm over dims with keepdim") {
    const auto x = arange<double>(0, 24).reshape({2, 3, 4});
    CHECK(sum(x).item() == 276);
    check_values(sum(x, {0}), {12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34});
    check_values(sum(x, {1, 2}), {66, 210});
    check_values(sum(x, {0, 2}), {60, 92, 124});
    CHECK(sum(x, {1}, true).shape() == Shape{2, 1, 4});
    check_values(mean(x, {2}), {1.5, 5.5, 9.5, 13.5, 17.5, 21.5});
    check_values(var(tensor<double>({1, 2, 3, 4})), {5.0 / 3.0});
    check_values(var(tensor<double>({1, 2, 3, 4}), {}, false), {1.25});
    CHECK(norm(tensor<double>({3, 4})).item() == doctest::Approx(5));
  }

  TEST_CASE("sum over non-adjacent dims of a view") {
    const auto x = arange<double>(0, 24).reshape({2, 3, 4});
    check_values(sum(x.permute({2, 0, 1}), {0, 2}), {66, 210});
    check_values(sum(x.permute({1, 0, 2}), {0}), sum(x, {1}).to_vector());
  }

  TEST_CASE("sum is deterministic and accurate on large inputs") {
    const auto x = random({1 << 22}, 6, 0, 1);
    const double s1 = sum(x).item(), s2 = sum(x).item();
    CHECK(s1 == s2);
    double reference = 0;
    for (double v : x.to_vector()) reference += v;
    CHECK(s1 == doctest::Approx(reference).epsilon(1e-12));
    const auto f = ones<float>({1 << 24});
    CHECK(sum(f).item() == 16777216.f);  // blocked summation stays exact here
  }

  TEST_CASE("max, min, argmax with indices") {
    const auto x = tensor<float>({{1, 5, 3}, {7, 2, 7}});
    const auto m = max(x, 1);
    check_values(m.values, {5, 7});
    check_values(m.indices, std::vector<std::int64_t>{1, 0});
    check_values(min(x, 0).values, {1, 2, 3});
    check_values(argmax(x, 0), std::vector<std::int64_t>{1, 0, 1});
    CHECK(max(x).item() == 7);
    CHECK(min(x).item() == 1);
    CHECK(max(x, 1, true).values.shape() == Shape{2, 1});
  }

  TEST_CASE("softmax and log_softmax along any dim") {
    const auto x = tensor<double>({{1, 2, 3}, {1, 1, 1}});
    const auto s = softmax(x, 1);
    const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
    check_values(s, {std::exp(1.0) / z, std::exp(2.0) / z, std::exp(3.0) / z, 1 / 3.0, 1 / 3.0, 1 / 3.0}, 1e-12);
    check_values(log_softmax(x, 1), log(s).to_vector(), 1e-12);
    check_values(softmax(x, 0), softmax(x.transpose(0, 1), 1).transpose(0, 1).to_vector(), 1e-12);
    check_values(softmax(x, 1, 0.5), softmax(x * 0.5, 1).to_vector(), 1e-12);
    // large logits do not overflow
    check_values(softmax(tensor<float>({1000, 1000}), 0), {0.5f, 0.5f});
  }

  TEST_CASE("ops whose backward reads only their output do not keep their input") {
    const auto leaf = ones<float>({1000}).requires_grad_();
    const std::vector<std::pair<const char*, std::function<TensorF(const TensorF&)>>> ops{
        {"exp", [](const TensorF& x) { return exp(x); }},         {"sqrt", [](const TensorF& x) { return sqrt(x); }},
        {"tanh", [](const TensorF& x) { return tanh(x); }},       {"sigmoid", [](const TensorF& x) { return sigmoid(x); }},
        {"softmax", [](const TensorF& x) { return softmax(x, 0); }}};
    for (const auto& [name, op] : ops) {
      const std::size_t before = Allocator<cpu>::instance().live_bytes();
      const TensorF y = op(leaf * 2.0f);  // the input is an intermediate the tape could free
      const char* op_name = name;  // the message captures it; clang < 16 cannot capture a structured binding
      CHECK_MESSAGE(Allocator<cpu>::instance().live_bytes() - before == 4032, op_name);  // y alone, 4000 bytes rounded up to 64
    }
  }
}

TEST_SUITE("matmul") {
  TEST_CASE("2-D, 1-D and batched with broadcasting") {
    const auto a = tensor<double>({{1, 2, 3}, {4, 5, 6}});
    const auto b = tensor<double>({{7, 8}, {9, 10}, {11, 12}});
    check_values(matmul(a, b), {58, 64, 139, 154});
    check_values(matmul(a, tensor<double>({1, 0, -1})), {-2, -2});
    check_values(matmul(tensor<double>({1, 1}), a), {5, 7, 9});
    CHECK(matmul(tensor<double>({1, 2}), tensor<double>({3, 4})).item() == 11);
    const auto batch = random({4, 1, 3, 5}, 7), other = random({6, 5, 2}, 8);
    const auto y = matmul(batch, other);
    CHECK(y.shape() == Shape{4, 6, 3, 2});
    check_values(y.select(0, 2).select(0, 4), matmul(batch.select(0, 2).select(0, 0), other.select(0, 4)).to_vector(), 1e-12);
    // 3-D @ 2-D folds the batch into rows
    const auto x3 = random({2, 7, 5}, 9), w = random({5, 4}, 10);
    check_values(matmul(x3, w).select(0, 1), matmul(x3.select(0, 1), w).to_vector(), 1e-12);
  }

  TEST_CASE("transposed and sliced operands") {
    const auto a = random({6, 5}, 11), b = random({4, 6}, 12);
    check_values(matmul(a.transpose(0, 1), b.transpose(0, 1)),
                 matmul(a.transpose(0, 1).contiguous(), b.transpose(0, 1).contiguous()).to_vector(), 1e-12);
    const auto s = slice(random({6, 10}, 13), 1, 0, 10, 2);  // neither stride is 1: copied
    check_values(matmul(s, b.transpose(0, 1).narrow(0, 0, 5)), matmul(s.contiguous(), b.transpose(0, 1).narrow(0, 0, 5).contiguous()).to_vector(), 1e-12);
  }

  // The fp32 GEMM kernel (backend/cpu_sgemm.hpp where the CPU has AVX-512 or AVX2) against a
  // float64 reference: every operand layout, sizes that leave partial 14 x 32 and 6 x 16 tiles,
  // and inner dimensions that cross the 512-deep packing slices (or are empty or odd: bf16
  // pairs); C starts from zero, from C (accumulate) or from a bias added to every row
  // (gemm_bias, Linear's GEMM). With MatmulPrecision::bf16 the reference multiplies the
  // operands rounded to bf16 (exact products, fp32 sums) where this build has the bf16
  // kernel, the unrounded ones elsewhere (the setting then changes nothing).
  TEST_CASE("fp32 GEMM matches a float64 reference for every layout, edge tile and precision") {
    using View = backend::MatrixView<float>;
    Generator gen(41);
    const std::vector<std::array<std::int64_t, 3>> sizes = {{1, 1, 1}, {15, 33, 7}, {29, 65, 300}, {445, 64, 64}, {3, 2100, 513}, {17, 40, 1100}, {4, 37, 0}};
    for (const auto& size : sizes) {
      const std::int64_t m = size[0], n = size[1], k = size[2];
      const std::vector<float> a = rand<float>({m * k}, gen, -1, 1).to_vector(), b = rand<float>({k * n}, gen, -1, 1).to_vector();
      const std::vector<float> c0 = rand<float>({m * (n + 3)}, gen, -1, 1).to_vector();
      const std::vector<float> bias = rand<float>({n}, gen, -1, 1).to_vector();
      enum class Start { zero, accumulate, bias };
      for (const MatmulPrecision precision : {MatmulPrecision::fp32, MatmulPrecision::bf16})
        for (const bool a_transposed : {false, true})
          for (const bool b_transposed : {false, true})
            for (const Start start : {Start::zero, Start::accumulate, Start::bias}) {
              const MatmulPrecisionGuard guard(precision);
              const bool rounded = precision == MatmulPrecision::bf16 && bf16_matmul_available;
              auto operand = [rounded](float x) { return double{rounded ? testing::round_to_bf16(x) : x}; };
              CAPTURE(static_cast<int>(precision));
              CAPTURE(m);
              CAPTURE(n);
              CAPTURE(k);
              CAPTURE(a_transposed);
              CAPTURE(b_transposed);
              CAPTURE(static_cast<int>(start));
              // The same numbers stored row- or column-major; C has a leading dimension of n + 3.
              const View av = a_transposed ? View{a.data(), m, k, 1, m} : View{a.data(), m, k, k, 1};
              const View bv = b_transposed ? View{b.data(), k, n, 1, k} : View{b.data(), k, n, n, 1};
              std::vector<float> c = c0;
              if (start == Start::bias)
                backend::Kernels<cpu>::gemm_bias(av, bv, bias.data(), c.data(), n + 3);
              else
                backend::Kernels<cpu>::gemm(av, bv, c.data(), n + 3, start == Start::accumulate);
              double worst = 0;
              for (std::int64_t i = 0; i < m; ++i)
                for (std::int64_t j = 0; j < n + 3; ++j) {
                  double expected = c0[i * (n + 3) + j];
                  if (j < n) {
                    double dot = 0;
                    for (std::int64_t p = 0; p < k; ++p)
                      dot += operand(av.data[i * av.row_stride + p * av.col_stride]) * operand(bv.data[p * bv.row_stride + j * bv.col_stride]);
                    expected = start == Start::accumulate ? expected + dot : start == Start::bias ? bias[j] + dot : dot;
                  }
                  worst = std::max(worst, std::abs(c[i * (n + 3) + j] - expected));
                }
              CHECK(worst <= 4e-5 * std::sqrt(double(k)));  // fp32 rounding of k products of |x| <= 1 (exact when k = 0)
            }
    }
  }

  TEST_CASE("matmul precision: the flags' spelling, and a guard that restores the previous one") {
    CHECK(parse_matmul_precision("fp32") == MatmulPrecision::fp32);
    CHECK(parse_matmul_precision("bf16") == MatmulPrecision::bf16);
    CHECK_THROWS_AS(parse_matmul_precision("fp16"), ValueError);
    REQUIRE(float32_matmul_precision() == MatmulPrecision::fp32);  // the default
    {
      const MatmulPrecisionGuard bf16(MatmulPrecision::bf16);
      CHECK(float32_matmul_precision() == MatmulPrecision::bf16);
      CHECK(float32_matmul_uses_bf16() == bf16_matmul_available);
    }
    CHECK(float32_matmul_precision() == MatmulPrecision::fp32);
  }

  TEST_CASE("linear is x W^T + b") {
    const auto x = tensor<double>({{1, 2}});
    const auto w = tensor<double>({{1, 0}, {0, 1}, {1, 1}});
    check_values(linear(x, w, tensor<double>({0.5, 0.5, 0.5})), {1.5, 2.5, 3.5});
  }

  TEST_CASE("feed_forward is linear(gelu(linear(x))) and keeps no (R, I) tensor on the tape") {
    Generator gen(5);
    const auto w1 = randn<float>({40, 6}, gen), b1 = randn<float>({40}, gen);
    const auto w2 = randn<float>({7, 40}, gen), b2 = randn<float>({7}, gen);
    const auto composed = [&](const TensorF& x) { return linear(gelu(linear(x, w1, b1)), w2, b2); };
    const auto fused = [&](const TensorF& x) { return feed_forward(x, w1, b1, w2, b2); };
    const auto x = randn<float>({3, 100, 6}, gen);
    const auto y = fused(x), y_ref = composed(x);
    CHECK(y.shape() == Shape{3, 100, 7});
    CHECK(max(abs(y - y_ref)).item() == 0.0f);  // the same kernels in the same order
    // What each keeps for the backward while its output lives: x is kept by both
    // (as a leaf here); the composition also keeps linear(x) and its GELU, each
    // 3 x 100 x 40 floats.
    const auto kept = [&](const auto& op) {
      const auto leaf = x.detach().requires_grad_();
      auto& allocator = Allocator<cpu>::instance();
      const std::size_t before = allocator.live_bytes();
      const auto out = op(leaf);
      return static_cast<std::int64_t>(allocator.live_bytes() - before) - out.numel() * std::int64_t{sizeof(float)};
    };
    CHECK(kept(composed) - kept(fused) == 2 * 3 * 100 * 40 * std::int64_t{sizeof(float)});
    CHECK(error_message([&] { feed_forward(x, w1, TensorF{}, w2, b2); }) == "feed_forward: needs both biases");
    CHECK(error_message([&] { feed_forward(zeros<float>({2, 3}), w1, b1, w2, b2); }) == "feed_forward: input (2, 3) does not match weight (40, 6)");
    CHECK(error_message([&] { feed_forward(x, w1, b1, w1, b2); }) ==
          "feed_forward: second weight (40, 6) and bias (7) do not follow first weight (40, 6)");
  }

  TEST_CASE("shape errors") {
    CHECK(error_message([] { matmul(zeros<float>({2, 3}), zeros<float>({4, 5})); }) == "matmul: (2, 3) @ (4, 5): inner dims 3 != 4");
    CHECK(error_message([] { matmul(zeros<float>({2, 2, 3}), zeros<float>({3, 3, 1})); }) ==
          "matmul: the batch dimensions of (2, 2, 3) and (3, 3, 1) do not broadcast");
  }
}

TEST_SUITE("indexing") {
  TEST_CASE("cat, stack, split") {
    const auto a = tensor<float>({{1, 2}}), b = tensor<float>({{3, 4}, {5, 6}});
    check_values(cat<float, cpu>({a, b}, 0), {1, 2, 3, 4, 5, 6});
    check_values(cat<float, cpu>({b, b}, 1), {3, 4, 3, 4, 5, 6, 5, 6});
    CHECK(stack<float, cpu>({a, a}, 0).shape() == Shape{2, 1, 2});
    const auto parts = split(arange<float>(0, 5), 2, 0);
    REQUIRE(parts.size() == 3);
    check_values(parts[2], {4});
    CHECK(error_message([&] { cat<float, cpu>({a, zeros<float>({1, 3})}, 0); }) == "cat: shapes (1, 2) and (1, 3) differ outside dim 0");
  }

  TEST_CASE("index_select, gather, scatter_add") {
    const auto x = arange<float>(0, 12).reshape({3, 4});
    const auto rows = tensor<std::int64_t>({2, 0, 2});
    check_values(index_select(x, 0, rows), {8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11});
    check_values(index_select(x, 1, tensor<std::int64_t>({3})), {3, 7, 11});
    const auto idx = tensor<std::int64_t>({{0, 3}, {1, 1}, {2, 0}});
    check_values(gather(x, 1, idx), {0, 3, 5, 5, 10, 8});
    check_values(scatter_add(zeros<float>({3, 4}), 1, idx, ones<float>({3, 2})), {1, 0, 0, 1, 0, 2, 0, 0, 1, 0, 1, 0});
    CHECK(error_message([&] { gather(x, 1, tensor<std::int64_t>({{4}, {0}, {0}})); }) == "gather: index 4 out of range [0, 4)");
  }
}

TEST_SUITE("autograd") {
  TEST_CASE("backward accumulates into leaves and frees non-leaf grads") {
    auto x = tensor<double>({1, 2, 3}).requires_grad_();
    auto y = x * x;
    auto loss = sum(y);
    loss.backward();
    check_values(x.grad(), {2, 4, 6});
    CHECK(!y.grad().defined());  // intermediate gradients are released
    sum(x * 3.0).backward();
    check_values(x.grad(), {5, 7, 9});  // accumulated, not overwritten
    x.zero_grad();
    CHECK(!x.grad().defined());
    CHECK(autograd::tape().size() == 0);
  }

  TEST_CASE("a tensor used twice receives both gradients") {
    auto x = tensor<double>({2}).requires_grad_();
    auto y = x * x + x;  // dy/dx = 2x + 1
    y.sum().backward();
    check_values(x.grad(), {5});
  }

  TEST_CASE("retain_grad keeps an intermediate gradient") {
    auto x = tensor<double>({1, 2}).requires_grad_();
    auto y = x * 2.0;
    y.retain_grad();
    sum(y * y).backward();
    check_values(y.grad(), {4, 8});
  }

  TEST_CASE("NoGradGuard and detach record nothing") {
    auto x = ones<double>({3}).requires_grad_();
    {
      NoGradGuard guard;
      auto y = x * 2.0;
      CHECK(!y.requires_grad());
    }
    CHECK(!(x.detach() * 2.0).requires_grad());
    CHECK(autograd::tape().size() == 0);
  }

  TEST_CASE("unused graphs are pruned from the tape") {
    auto x = ones<float>({8}).requires_grad_();
    for (int i = 0; i < 5000; ++i) {
      auto y = exp(x * 2.0f);  // dropped without backward
    }
    CHECK(autograd::tape().size() < 2100);
    clear_tape();
  }

  TEST_CASE("broadcast inputs get gradients of their own shape") {
    auto a = ones<double>({2, 3}).requires_grad_();
    auto b = tensor<double>({1, 2, 3}).requires_grad_();
    sum(a * b).backward();
    CHECK(b.grad().shape() == Shape{3});
    check_values(b.grad(), {2, 2, 2});
    check_values(a.grad(), {1, 2, 3, 1, 2, 3});
  }

  TEST_CASE("autograd errors") {
    CHECK(error_message([] { ones<float>({2}).backward(); }) == "backward: tensor (2) does not require grad");
    auto x = ones<float>({2}).requires_grad_();
    CHECK(error_message([&] { (x * 2.0f).backward(); }) == "backward: needs a tensor with one element, got shape (2)");
    clear_tape();
  }

  TEST_CASE("threads have their own tapes") {
    std::vector<double> results(2);
    auto work = [&](int k) {
      auto x = full<double>({4}, 1.0 + k).requires_grad_();
      for (int i = 0; i < 200; ++i) sum(x * x).backward();
      results[static_cast<std::size_t>(k)] = x.grad().to_vector()[0];
    };
    std::thread t0(work, 0), t1(work, 1);
    t0.join(), t1.join();
    CHECK(results[0] == 400.0);
    CHECK(results[1] == 800.0);
  }
}

// Every differentiable op, in float64 against central differences.
TEST_SUITE("gradcheck") {
  using V = const std::vector<TensorD>&;
  TEST_CASE("unary ops") {
    const auto x = random({3, 4}, 20);
    const auto positive = random({3, 4}, 21, 0.5, 2);
    check_gradient([](V v) { return neg(v[0]); }, {x});
    check_gradient([](V v) { return exp(v[0]); }, {x});
    check_gradient([](V v) { return log(v[0]); }, {positive});
    check_gradient([](V v) { return sqrt(v[0]); }, {positive});
    check_gradient([](V v) { return abs(v[0]); }, {x});
    check_gradient([](V v) { return relu(v[0]); }, {x});
    check_gradient([](V v) { return gelu(v[0]); }, {random({3, 4}, 22, -3, 3)});
    check_gradient([](V v) { return tanh(v[0]); }, {x});
    check_gradient([](V v) { return sigmoid(v[0]); }, {x});
    check_gradient([](V v) { return clamp(v[0], -0.5, 0.5); }, {x});
    check_gradient([](V v) { return pow(v[0], 2.5); }, {positive});
    check_gradient([](V v) { return v[0] * 3.0 + 1.0; }, {x});
    check_gradient([](V v) { return 2.0 / v[0]; }, {positive});
  }

  TEST_CASE("binary ops with broadcasting") {
    const auto a = random({3, 4}, 23), b = random({4}, 24), c = random({3, 1}, 25, 0.5, 2);
    check_gradient([](V v) { return v[0] + v[1]; }, {a, b});
    check_gradient([](V v) { return v[0] - v[1]; }, {a, b});
    check_gradient([](V v) { return v[0] * v[1]; }, {a, b});
    check_gradient([](V v) { return v[0] / v[1]; }, {a, c});
    check_gradient([](V v) { return pow(v[1], v[0]); }, {a, c});
    check_gradient([](V v) { return where(gt(v[0], 0.0), v[0], v[1]); }, {a, b});
  }

  TEST_CASE("views") {
    const auto x = random({2, 3, 4}, 26);
    check_gradient([](V v) { return v[0].reshape({6, 4}); }, {x});
    check_gradient([](V v) { return v[0].permute({2, 0, 1}); }, {x});
    check_gradient([](V v) { return v[0].transpose(0, 2); }, {x});
    check_gradient([](V v) { return slice(v[0], 2, 1, 4, 2); }, {x});
    check_gradient([](V v) { return v[0].narrow(1, 1, 2); }, {x});
    check_gradient([](V v) { return v[0].select(1, 2); }, {x});
    check_gradient([](V v) { return v[0].narrow(0, 0, 1).expand({3, 3, 4}); }, {x});
    check_gradient([](V v) { return v[0].unsqueeze(1).squeeze(1); }, {x});
    check_gradient([](V v) { return v[0].flatten(1); }, {x});
    check_gradient([](V v) { return v[0].transpose(0, 1).contiguous(); }, {x});
    check_gradient([](V v) { return clone(v[0]); }, {x});
  }

  TEST_CASE("reductions and softmax") {
    const auto x = random({3, 4, 5}, 27);
    check_gradient([](V v) { return sum(v[0]); }, {x});
    check_gradient([](V v) { return sum(v[0], {0, 2}, true); }, {x});
    check_gradient([](V v) { return mean(v[0], {1}); }, {x});
    check_gradient([](V v) { return var(v[0], {2}); }, {x});
    check_gradient([](V v) { return norm(v[0], {0}); }, {x});
    check_gradient([](V v) { return max(v[0], 1).values; }, {x});
    check_gradient([](V v) { return min(v[0], 2, true).values; }, {x});
    check_gradient([](V v) { return softmax(v[0], 2); }, {x});
    check_gradient([](V v) { return softmax(v[0], 0, 0.7); }, {x});
    check_gradient([](V v) { return log_softmax(v[0], 1); }, {x});
    check_gradient([](V v) { return sum(v[0].transpose(0, 2), {1}); }, {x});
  }

  TEST_CASE("matmul and linear") {
    check_gradient([](V v) { return matmul(v[0], v[1]); }, {random({3, 4}, 28), random({4, 5}, 29)});
    check_gradient([](V v) { return matmul(v[0], v[1]); }, {random({2, 3, 4}, 30), random({4, 2}, 31)});
    check_gradient([](V v) { return matmul(v[0], v[1]); }, {random({2, 1, 3, 4}, 32), random({3, 4, 2}, 33)});
    check_gradient([](V v) { return matmul(v[0], v[1]); }, {random({4}, 34), random({4, 3}, 35)});
    check_gradient([](V v) { return matmul(v[0], v[1]); }, {random({4}, 36), random({4}, 37)});
    check_gradient([](V v) { return matmul(v[0].transpose(0, 1), v[1]); }, {random({4, 3}, 38), random({4, 2}, 39)});
    check_gradient([](V v) { return linear(v[0], v[1], v[2]); }, {random({2, 3, 4}, 40), random({5, 4}, 41), random({5}, 42)});
    check_gradient([](V v) { return feed_forward(v[0], v[1], v[2], v[3], v[4]); },
                   {random({2, 3, 4}, 147), random({6, 4}, 148, -2, 2), random({6}, 149), random({5, 6}, 150), random({5}, 151)});
  }

  TEST_CASE("indexing") {
    const auto x = random({3, 4}, 43);
    const auto idx = tensor<std::int64_t>({{0, 3, 3}, {1, 1, 0}, {2, 0, 1}});
    check_gradient([](V v) { return cat<double, cpu>({v[0], v[1]}, 1); }, {x, random({3, 2}, 44)});
    check_gradient([](V v) { return stack<double, cpu>({v[0], v[1]}, 0); }, {x, random({3, 4}, 45)});
    check_gradient([&](V v) { return gather(v[0], 1, idx); }, {x});
    check_gradient([&](V v) { return scatter_add(v[0], 1, idx, v[1]); }, {x, random({3, 3}, 46)});
    check_gradient([](V v) { return index_select(v[0], 0, tensor<std::int64_t>({2, 2, 0})); }, {x});
    check_gradient([](V v) { return split(v[0], 3, 1)[1]; }, {x});
  }

  TEST_CASE("gradcheck itself catches a wrong gradient") {
    // An op with a deliberately wrong backward must fail the check.
    auto wrong_square = [](V v) {
      TensorD y = map(v[0], [](double a) { return a * a; });
      if (autograd::needs_grad(v[0]))
        autograd::record(y, [x = v[0]](const TensorD& g) { autograd::accumulate_grad(x, g * 3.0); });
      return y;
    };
    CHECK(!gradcheck(wrong_square, {random({4}, 47)}).passed);
  }
}

TEST_CASE("printing") {
  std::ostringstream os;
  os << tensor<float>({{1, 2}, {3, 4}});
  CHECK(os.str() == "tensor([[1, 2],\n        [3, 4]], shape=(2, 2))");
  std::ostringstream big;
  big << arange<float>(0, 100);
  CHECK(big.str() == "tensor([0, 1, 2, ..., 97, 98, 99], shape=(100))");
}

// ---- misuse that must be an error, not a wrong result ----

TEST_CASE("autograd: a graph runs once; a second backward through it is an error, not a silent no-op") {
  const TensorD x = full<double>({1}, 3.0).requires_grad_();
  const TensorD h = x * x;
  const TensorD first = sum(h), second = sum(h * 2.0);
  first.backward();
  CHECK(x.grad().item() == 6.0);
  CHECK_THROWS_AS(second.backward(), AutogradError);  // h's backward already ran (PyTorch: retain_graph)
  CHECK_THROWS_AS(first.backward(), AutogradError);
  const TensorD z = full<double>({1}, 2.0).requires_grad_();
  const TensorD cleared = sum(z * 3.0);
  clear_tape();
  CHECK_THROWS_WITH_AS(cleared.backward(),
                       "backward: reached a tensor () whose backward already ran or was cleared (a second backward through the same graph, "
                       "or one after clear_tape(); recompute the forward)",
                       AutogradError);
  const TensorD again = sum(z * 3.0);  // a new forward works
  again.backward();
  CHECK(z.grad().item() == 3.0);
}

TEST_CASE("autograd: an exception in a backward clears the tape; the next backward is exact") {
  const TensorD w = full<double>({1}, 1.0).requires_grad_();
  {
    const TensorD a = w * 7.0;  // its entry must not run in a later backward
    TensorD thrower = a * 1.0;
    autograd::record(thrower, [](const TensorD&) { throw ValueError("a backward that fails"); });
    CHECK_THROWS_AS(sum(thrower).backward(), ValueError);
  }
  w.zero_grad();
  sum(w * 5.0).backward();
  CHECK(w.grad().item() == 5.0);  // nothing of the failed graph ran afterwards
  CHECK(autograd::tape().size() == 0);
}

TEST_CASE("in-place writes and views: clear errors where the result would be wrong") {
  CHECK_THROWS_WITH_AS(narrow(arange<float>(0, 5), 0, 2, 10), "narrow: [2, 2 + 10) outside dim 0 of shape (5)", ShapeError);
  CHECK(narrow(arange<float>(0, 5), 0, 2, 3).shape() == Shape{3});
  CHECK_THROWS_WITH_AS(reshape(arange<float>(0, 16), {16777232, 1099510579201}),
                       "reshape: shape (16777232, 1099510579201) has more than 2^63 elements", ShapeError);
  CHECK_THROWS_AS(zeros<float>({-2, 3}), ShapeError);
  const TensorF empty_rows = zeros<float>({3, 0});  // zero-width tensors go through every map
  CHECK((empty_rows + 1.0f).shape() == Shape{3, 0});
  CHECK(cat(std::vector<TensorF>{zeros<float>({2, 0}), ones<float>({2, 2})}, 1).shape() == Shape{2, 2});
  const TensorF base = zeros<float>({1});
  CHECK_THROWS_AS(fill_(base.expand({4}), 1.0f), ShapeError);
  const TensorF leaf = zeros<float>({2}).requires_grad_();
  CHECK_THROWS_AS(copy_(leaf, ones<float>({2})), AutogradError);
  {
    NoGradGuard no_grad;  // as optimizers and initializers write
    copy_(leaf, ones<float>({2}));
  }
  CHECK(leaf.to_vector() == std::vector<float>{1, 1});
}
