#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include <omp.h>

#include "metro/io/safetensors.hpp"
#include "metro/nn/losses.hpp"
#include "metro/nn/optim.hpp"
#include "metro/nn/schedule.hpp"
#include "metro/tensor.hpp"

using metro::Shape;
using metro::TensorD;
using metro::TensorF;
using namespace metro::nn;

namespace {

// A PyTorch reference fixture (tools/fixtures.md); tensors converted to Tensor<T>.
class Fixture {
 public:
  explicit Fixture(const std::string& name)
      : file_(metro::io::load_safetensors(std::string(METRO_TEST_DATA_DIR) + "/fixtures/" + name + ".safetensors")) {}

  template <class T>
  metro::Tensor<T> get(const std::string& key) const {
    const auto found = file_.tensors.find(key);
    REQUIRE_MESSAGE(found != file_.tensors.end(), "fixture has no tensor " << key);
    const metro::io::TensorRecord& record = found->second;
    std::vector<T> values;
    if (record.dtype == metro::io::DType::f32)
      for (float v : metro::io::record_to_vector<float>(record, key)) values.push_back(static_cast<T>(v));
    else
      for (double v : metro::io::record_to_vector<double>(record, key)) values.push_back(static_cast<T>(v));
    return metro::from_vector<T>(values, Shape(record.shape));
  }

 private:
  metro::io::SafeTensorsFile file_;
};

// Largest |a - b| / (|b| + floor) over the elements; shapes must agree.
template <class T>
double max_relative_error(const metro::Tensor<T>& actual, const metro::Tensor<T>& expected, double floor = 1e-3) {
  REQUIRE(actual.shape() == expected.shape());
  const std::vector<T> a = actual.to_vector(), b = expected.to_vector();
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])) / (std::abs(static_cast<double>(b[i])) + floor));
  return worst;
}

template <class T>
double max_abs_error(const metro::Tensor<T>& actual, const metro::Tensor<T>& expected) {
  REQUIRE(actual.shape() == expected.shape());
  const std::vector<T> a = actual.to_vector(), b = expected.to_vector();
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
  return worst;
}

TensorF parameter(const TensorF& values) { return metro::clone(values).requires_grad_(); }

using MakeOptimizer = std::function<std::unique_ptr<Optimizer<float>>(std::vector<TensorF>)>;

std::unique_ptr<Optimizer<float>> make_adam(std::vector<TensorF> p) {
  return std::make_unique<Adam<float>>(std::move(p), AdamOptions{.lr = 1e-2});
}
std::unique_ptr<Optimizer<float>> make_adamw(std::vector<TensorF> p) {
  return std::make_unique<AdamW<float>>(std::move(p), AdamOptions{.lr = 1e-2, .weight_decay = 1e-2});
}
std::unique_ptr<Optimizer<float>> make_sgd(std::vector<TensorF> p) {
  return std::make_unique<SGD<float>>(std::move(p), SGDOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 1e-4});
}

struct OptimizerCase {
  std::string fixture;
  MakeOptimizer make;
  std::vector<std::pair<std::string, std::string>> state;  // our state key, fixture key
};

std::vector<OptimizerCase> optimizer_cases() {
  return {{"adam", make_adam, {{"exp_avg.0", "state_after.exp_avg"}, {"exp_avg_sq.0", "state_after.exp_avg_sq"}}},
          {"adamw", make_adamw, {{"exp_avg.0", "state_after.exp_avg"}, {"exp_avg_sq.0", "state_after.exp_avg_sq"}}},
          {"sgd_momentum", make_sgd, {{"momentum.0", "state_after.momentum_buffer"}}}};
}

// Gives the fixture's gradient k to p and steps.
void fixture_step(Optimizer<float>& optimizer, const TensorF& p, const Fixture& fixture, int k) {
  p.set_grad(fixture.get<float>("grads." + std::to_string(k)));
  optimizer.step();
}

}  // namespace

// ---- optimizers ---------------------------------------------------------------

TEST_CASE("Adam, AdamW and SGD follow torch.optim for 10 steps (fixtures)") {
  for (const OptimizerCase& c : optimizer_cases()) {
    CAPTURE(c.fixture);
    const Fixture fixture(c.fixture);
    const TensorF p = parameter(fixture.get<float>("param.initial"));
    const auto optimizer = c.make({p});
    for (int k = 1; k <= 10; ++k) {
      CAPTURE(k);
      fixture_step(*optimizer, p, fixture, k);
      CHECK(max_abs_error(p, fixture.get<float>("param.step" + std::to_string(k))) < 1e-5);
    }
    const auto state = optimizer->state();
    CHECK(state.step == 10);
    CHECK(state.parameter_steps == std::vector<std::int64_t>{10});
    for (const auto& [ours, theirs] : c.state) CHECK(max_abs_error(state.tensors.at(ours), fixture.get<float>(theirs)) < 1e-5);
  }
}

TEST_CASE("saving and loading optimizer state continues bit for bit") {
  for (const OptimizerCase& c : optimizer_cases()) {
    CAPTURE(c.fixture);
    const Fixture fixture(c.fixture);
    const TensorF original = parameter(fixture.get<float>("param.initial"));
    const auto first = c.make({original});
    for (int k = 1; k <= 5; ++k) fixture_step(*first, original, fixture, k);

    const TensorF resumed = parameter(original.detach()), fresh = parameter(original.detach());
    const auto second = c.make({resumed});
    const auto unrestored = c.make({fresh});
    second->load_state(first->state());
    CHECK(second->step_count() == 5);
    for (int k = 6; k <= 10; ++k) {
      fixture_step(*first, original, fixture, k);
      fixture_step(*second, resumed, fixture, k);
      fixture_step(*unrestored, fresh, fixture, k);
    }
    CHECK(resumed.to_vector() == original.to_vector());
    CHECK(fresh.to_vector() != original.to_vector());  // the state matters, so the check above means something
  }
}

TEST_CASE("load_state rejects state that does not fit") {
  const TensorF p = parameter(metro::ones<float>({2, 3}));
  Adam<float> adam({p}, AdamOptions{});
  p.set_grad(metro::ones<float>({2, 3}));
  adam.step();
  auto state = adam.state();

  Adam<float> other_shape({parameter(metro::ones<float>({3, 2}))}, AdamOptions{});
  CHECK_THROWS_AS(other_shape.load_state(state), metro::ShapeError);
  SGD<float> sgd({parameter(metro::ones<float>({2, 3}))}, SGDOptions{.momentum = 0.9});
  CHECK_THROWS_AS(sgd.load_state(state), metro::ValueError);  // exp_avg.0 is not SGD state
  state.tensors["exp_avg.1"] = metro::ones<float>({2, 3});
  CHECK_THROWS_AS(adam.load_state(state), metro::ValueError);  // no parameter 1
  state.tensors.erase("exp_avg.1");
  state.parameter_steps.push_back(0);
  CHECK_THROWS_AS(adam.load_state(state), metro::ValueError);
}

TEST_CASE("parameters without a gradient are skipped") {
  const TensorF used = parameter(metro::ones<float>({4})), unused = parameter(metro::full<float>({3}, 2.f));
  Adam<float> adam({used, unused}, AdamOptions{.lr = 0.1});
  used.set_grad(metro::full<float>({4}, 0.5f));
  adam.step();
  for (float v : used.to_vector()) CHECK(v == doctest::Approx(0.9).epsilon(1e-6));  // first Adam step: lr * sign(g)
  CHECK(unused.to_vector() == std::vector<float>(3, 2.f));
  const auto state = adam.state();
  CHECK(state.parameter_steps == std::vector<std::int64_t>{1, 0});
  CHECK(state.tensors.count("exp_avg.1") == 0);
  adam.zero_grad();
  CHECK_FALSE(used.grad().defined());
}

TEST_CASE("SGD with Nesterov momentum and with dampening, by hand") {
  // p = 1, g = 0.5 on both steps, lr 0.1, momentum 0.9.
  const TensorF nesterov_p = parameter(metro::ones<float>({1})), damped_p = parameter(metro::ones<float>({1}));
  SGD<float> nesterov({nesterov_p}, SGDOptions{.lr = 0.1, .momentum = 0.9, .nesterov = true});
  SGD<float> damped({damped_p}, SGDOptions{.lr = 0.1, .momentum = 0.9, .dampening = 0.5});
  for (int step = 0; step < 2; ++step) {
    nesterov_p.set_grad(metro::full<float>({1}, 0.5f)), damped_p.set_grad(metro::full<float>({1}, 0.5f));
    nesterov.step(), damped.step();
  }
  // Nesterov: buf 0.5 -> d 0.95 -> p 0.905; buf 0.95 -> d 1.355 -> p 0.7695.
  CHECK(nesterov_p.item() == doctest::Approx(0.7695).epsilon(1e-6));
  // Dampening 0.5 (not on the first step): buf 0.5 -> p 0.95; buf 0.45 + 0.25 = 0.7 -> p 0.88.
  CHECK(damped_p.item() == doctest::Approx(0.88).epsilon(1e-6));
  CHECK_THROWS_AS(SGD<float>({nesterov_p}, SGDOptions{.momentum = 0, .nesterov = true}), metro::ValueError);
}

TEST_CASE("Adam's L2 weight decay differs from AdamW's decoupled decay as PyTorch's does") {
  // Scalar reference of both rules, 3 steps, p0 = 1, g = 0.3, lr 0.1, wd 0.5.
  const double lr = 0.1, wd = 0.5, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  double p_adam = 1, m_adam = 0, v_adam = 0, p_adamw = 1, m_adamw = 0, v_adamw = 0;
  const TensorF adam_p = parameter(metro::ones<float>({1})), adamw_p = parameter(metro::ones<float>({1}));
  Adam<float> adam({adam_p}, AdamOptions{.lr = lr, .weight_decay = wd});
  AdamW<float> adamw({adamw_p}, AdamOptions{.lr = lr, .weight_decay = wd});
  for (int t = 1; t <= 3; ++t) {
    const double g_adam = 0.3 + wd * p_adam;
    m_adam = b1 * m_adam + (1 - b1) * g_adam, v_adam = b2 * v_adam + (1 - b2) * g_adam * g_adam;
    p_adam -= lr / (1 - std::pow(b1, t)) * m_adam / (std::sqrt(v_adam / (1 - std::pow(b2, t))) + eps);
    p_adamw *= 1 - lr * wd;
    m_adamw = b1 * m_adamw + (1 - b1) * 0.3, v_adamw = b2 * v_adamw + (1 - b2) * 0.09;
    p_adamw -= lr / (1 - std::pow(b1, t)) * m_adamw / (std::sqrt(v_adamw / (1 - std::pow(b2, t))) + eps);
    adam_p.set_grad(metro::full<float>({1}, 0.3f)), adamw_p.set_grad(metro::full<float>({1}, 0.3f));
    adam.step(), adamw.step();
  }
  CHECK(adam_p.item() == doctest::Approx(p_adam).epsilon(1e-6));
  CHECK(adamw_p.item() == doctest::Approx(p_adamw).epsilon(1e-6));
  CHECK(std::abs(p_adam - p_adamw) > 1e-3);
}

TEST_CASE("set_lr changes the step size and rejects bad rates") {
  const TensorF p = parameter(metro::zeros<float>({2}));
  SGD<float> sgd({p}, SGDOptions{.lr = 1});
  sgd.set_lr(0.25);
  CHECK(sgd.lr() == 0.25);
  p.set_grad(metro::full<float>({2}, 2.f));
  sgd.step();
  CHECK(p.to_vector() == std::vector<float>{-0.5f, -0.5f});
  CHECK_THROWS_AS(sgd.set_lr(-1), metro::ValueError);
  CHECK_THROWS_AS(sgd.set_lr(std::nan("")), metro::ValueError);
}

TEST_CASE("a large parameter is updated by the threaded loop like a small one") {
  // 100000 elements run in parallel pieces; the same values in 10 small tensors run serially.
  metro::Generator gen(7);
  const TensorF values = metro::randn<float>({100000}, gen), grads = metro::randn<float>({100000}, gen);
  const TensorF big = parameter(values);
  std::vector<TensorF> pieces;
  for (int i = 0; i < 10; ++i) pieces.push_back(parameter(metro::narrow(values, 0, i * 10000, 10000)));
  Adam<float> big_adam({big}, AdamOptions{.lr = 0.01});
  Adam<float> pieces_adam(pieces, AdamOptions{.lr = 0.01});
  for (int step = 0; step < 2; ++step) {
    big.set_grad(grads);
    for (int i = 0; i < 10; ++i) pieces[static_cast<std::size_t>(i)].set_grad(metro::clone(metro::narrow(grads, 0, i * 10000, 10000)));
    big_adam.step(), pieces_adam.step();
  }
  for (int i = 0; i < 10; ++i)
    CHECK(max_abs_error(metro::clone(metro::narrow(big.detach(), 0, i * 10000, 10000)), pieces[static_cast<std::size_t>(i)]) < 1e-6);
}

// ---- clip_grad_norm, all_finite -------------------------------------------------

TEST_CASE("clip_grad_norm scales to max_norm and returns the total norm") {
  // Gradients (3, 4) and (12): total norm sqrt(9 + 16 + 144) = 13.
  const TensorF a = parameter(metro::zeros<float>({2})), b = parameter(metro::zeros<float>({1})), none = parameter(metro::zeros<float>({5}));
  const auto set_grads = [&] {
    a.set_grad(metro::tensor<float>({3.f, 4.f}));
    b.set_grad(metro::tensor<float>({12.f}));
  };
  set_grads();
  CHECK(clip_grad_norm<float>({a, b, none}, 100.0) == doctest::Approx(13.0));
  CHECK(a.grad().to_vector() == std::vector<float>{3.f, 4.f});  // below the limit: untouched
  CHECK(clip_grad_norm<float>({a, b, none}, 6.5) == doctest::Approx(13.0));
  const double scale = 6.5 / (13.0 + 1e-6);
  CHECK(a.grad().to_vector()[0] == doctest::Approx(3 * scale).epsilon(1e-6));
  CHECK(a.grad().to_vector()[1] == doctest::Approx(4 * scale).epsilon(1e-6));
  CHECK(b.grad().item() == doctest::Approx(12 * scale).epsilon(1e-6));
  CHECK_FALSE(none.grad().defined());
  CHECK(all_finite<float>({a, b, none}));

  b.set_grad(metro::tensor<float>({std::numeric_limits<float>::infinity()}));
  CHECK_FALSE(all_finite<float>({a, b}));
  CHECK(std::isinf(clip_grad_norm<float>({a, b}, 1.0)));
  CHECK(a.grad().to_vector()[0] == doctest::Approx(3 * scale).epsilon(1e-6));  // left alone
  b.set_grad(metro::tensor<float>({std::nanf("")}));
  CHECK_FALSE(all_finite<float>({a, b}));
}

TEST_CASE("grad_norm of a large gradient: the same on 1 and 2 threads, a NaN anywhere shows") {
  // 100003 values (i mod 7) / 4 in several parallel blocks, against a serial double sum.
  std::vector<float> values(100003);
  double expected = 0;
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 7) * 0.25f, expected += double(values[i]) * values[i];
  const TensorF p = parameter(metro::zeros<float>({100003}));
  p.set_grad(metro::from_vector<float>(values, {100003}));
  omp_set_num_threads(1);
  const double serial = grad_norm<float>({p});
  omp_set_num_threads(2);
  CHECK(grad_norm<float>({p}) == serial);
  CHECK(serial == doctest::Approx(std::sqrt(expected)).epsilon(1e-12));
  values[99999] = std::nanf("");
  p.set_grad(metro::from_vector<float>(values, {100003}));
  CHECK(std::isnan(grad_norm<float>({p})));
}

// ---- schedules -----------------------------------------------------------------

TEST_CASE("step decay, linear warmup and cosine at known steps") {
  const StepDecay metro_schedule(1e-4, {100});
  CHECK(metro_schedule.lr_at(0) == doctest::Approx(1e-4));
  CHECK(metro_schedule.lr_at(99) == doctest::Approx(1e-4));
  CHECK(metro_schedule.lr_at(100) == doctest::Approx(1e-5));
  const StepDecay twice(1.0, {20, 10}, 0.5);
  CHECK(twice.lr_at(9) == 1.0);
  CHECK(twice.lr_at(10) == 0.5);
  CHECK(twice.lr_at(25) == 0.25);

  const LinearWarmup warmup(0.4, 4);
  CHECK(warmup.lr_at(0) == doctest::Approx(0.1));
  CHECK(warmup.lr_at(2) == doctest::Approx(0.3));
  CHECK(warmup.lr_at(3) == doctest::Approx(0.4));
  CHECK(warmup.lr_at(1000) == doctest::Approx(0.4));

  const CosineSchedule cosine(1.0, 110, 10, 0.1);
  CHECK(cosine.lr_at(0) == doctest::Approx(0.1));   // warmup 1/10
  CHECK(cosine.lr_at(10) == doctest::Approx(1.0));  // top of the cosine
  CHECK(cosine.lr_at(60) == doctest::Approx(0.55)); // halfway: (1 + 0.1) / 2
  CHECK(cosine.lr_at(35) == doctest::Approx(0.1 + 0.9 * 0.5 * (1 + std::cos(std::numbers::pi / 4))));
  CHECK(cosine.lr_at(110) == doctest::Approx(0.1));
  CHECK(cosine.lr_at(500) == doctest::Approx(0.1));
  CHECK_THROWS_AS(CosineSchedule(1.0, 10, 10), metro::ValueError);
}

// ---- losses and camera ------------------------------------------------------------

TEST_CASE_TEMPLATE("gated L1/MSE and the projection match PyTorch (fixtures)", T, float, double) {
  const double tolerance = std::is_same_v<T, float> ? 1e-5 : 1e-10;
  for (const char* name : {"losses", "losses_no_gate"}) {
    CAPTURE(name);
    const Fixture f(name);
    const auto pred = f.get<T>("input.pred").requires_grad_(), target = f.get<T>("input.target").requires_grad_();
    const auto cam = f.get<T>("input.cam").requires_grad_();
    const auto gate = f.get<T>("input.gate");
    const auto proj = orthographic_projection(pred, cam);
    const auto l1 = gated_l1_loss(pred, target, gate), mse = gated_mse_loss(pred, target, gate);
    const auto loss = metro::sum(proj * f.get<T>("loss_weight.proj")) + l1 * f.get<T>("loss_weight.l1_gated") +
                      mse * f.get<T>("loss_weight.mse_gated");
    loss.backward();
    CHECK(max_relative_error(proj, f.get<T>("output.proj")) < tolerance);
    CHECK(max_relative_error(l1, f.get<T>("output.l1_gated")) < tolerance);
    CHECK(max_relative_error(mse, f.get<T>("output.mse_gated")) < tolerance);
    CHECK(max_relative_error(pred.grad(), f.get<T>("grad.input.pred")) < tolerance);
    CHECK(max_relative_error(target.grad(), f.get<T>("grad.input.target")) < tolerance);
    CHECK(max_relative_error(cam.grad(), f.get<T>("grad.input.cam")) < tolerance);
  }
}

TEST_CASE("keypoint losses, pelvis centring and the projection, by hand") {
  // Labels: j0 (2,0,0), j1 (0,0,0), j2 (1,1,0), j3 (1,-1,0): pelvis (1,0,0); centred
  // j0 (1,0,0), j1 (-1,0,0), j2 (0,1,0), j3 (0,-1,0). Prediction 0: squared error 1
  // per joint; confidences (1, 0, 1, 1): 3 over 12 elements.
  const TensorD labels_3d = metro::from_vector<double>({2, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 1, 1, -1, 0, 1}, {1, 4, 4});
  const TensorD has = metro::ones<double>({1});
  CHECK(keypoint_3d_loss(metro::zeros<double>({1, 4, 3}), labels_3d, has).item() == doctest::Approx(0.25));
  // A translated prediction has the same centred joints.
  CHECK(keypoint_3d_loss(metro::full<double>({1, 4, 3}, 5.0), labels_3d, has).item() == doctest::Approx(0.25));
  CHECK(keypoint_3d_loss(metro::zeros<double>({1, 4, 3}), labels_3d, metro::zeros<double>({1})).item() == 0.0);

  // 2D: labels (1,2) visible, (3,4) not: (1 + 4) / 4 elements.
  const TensorD labels_2d = metro::from_vector<double>({1, 2, 1, 3, 4, 0}, {1, 2, 3});
  CHECK(keypoint_2d_loss(metro::zeros<double>({1, 2, 2}), labels_2d, has).item() == doctest::Approx(1.25));

  // s (x + tx), s (y + ty) for (1, 2, 3) with camera (2, 0.5, -1).
  const TensorD projected = orthographic_projection(metro::from_vector<double>({1, 2, 3}, {1, 1, 3}), metro::tensor<double>({{2, 0.5, -1}}));
  CHECK(projected.to_vector() == std::vector<double>{3, 2});

  // J = G V: joint 0 = mean of vertices 0 and 1, joint 1 = vertex 2.
  const TensorD regressor = metro::tensor<double>({{0.5, 0.5, 0}, {0, 0, 1}});
  const TensorD vertices = metro::from_vector<double>({0, 0, 0, 2, 4, 6, 7, 8, 9}, {1, 3, 3});
  CHECK(regress_joints(regressor, vertices).to_vector() == std::vector<double>{1, 2, 3, 7, 8, 9});

  CHECK_THROWS_AS(keypoint_3d_loss(metro::zeros<double>({1, 4, 3}), metro::zeros<double>({1, 4, 3}), has), metro::ShapeError);
  CHECK_THROWS_AS(gated_l1_loss(metro::zeros<double>({2, 3}), metro::zeros<double>({2, 3}), has), metro::ShapeError);
}

TEST_CASE("a gated-off sample cannot change a loss, even with NaN predictions") {
  metro::Generator gen(3);
  const TensorD target = metro::randn<double>({3, 5, 3}, gen);
  const TensorD pred = metro::randn<double>({3, 5, 3}, gen).requires_grad_();
  const TensorD gate = metro::tensor<double>({1, 0, 1});
  const double reference = gated_l1_loss(pred, target, gate).item();
  TensorD poisoned = metro::clone(pred.detach());
  metro::fill_(metro::select(poisoned, 0, 1), std::nan(""));
  poisoned.requires_grad_();
  const TensorD loss = gated_l1_loss(poisoned, target, gate);
  CHECK(loss.item() == doctest::Approx(reference));
  loss.backward();
  const std::vector<double> grad = poisoned.grad().to_vector();
  for (int i = 15; i < 30; ++i) CHECK(grad[static_cast<std::size_t>(i)] == 0.0);
  CHECK(grad[0] != 0.0);
}

namespace {

// A random METRO batch: B = 2 samples, 14 joints, 5/7/9 vertices at the three levels.
struct SmallBatch {
  metro::Generator gen{11};
  TensorD regressor = metro::rand<double>({14, 9}, gen);
  MetroTargets<double> targets;
  std::vector<TensorD> predictions;  // joints, coarse, mid, full vertices, camera

  SmallBatch() {
    TensorD joints_3d = metro::randn<double>({2, 14, 4}, gen), joints_2d = metro::randn<double>({2, 14, 3}, gen);
    metro::copy_(metro::narrow(joints_3d, 2, 3, 1), metro::rand<double>({2, 14, 1}, gen));  // confidences in [0, 1)
    metro::copy_(metro::narrow(joints_2d, 2, 2, 1), metro::bernoulli<double>({2, 14, 1}, 0.7, gen));
    targets = {joints_3d, joints_2d, metro::randn<double>({2, 5, 3}, gen), metro::randn<double>({2, 7, 3}, gen),
               metro::randn<double>({2, 9, 3}, gen), metro::tensor<double>({1, 1}), metro::tensor<double>({1, 0}),
               metro::tensor<double>({0, 1})};
    predictions = {metro::randn<double>({2, 14, 3}, gen), metro::randn<double>({2, 5, 3}, gen), metro::randn<double>({2, 7, 3}, gen),
                   metro::randn<double>({2, 9, 3}, gen), metro::rand<double>({2, 3}, gen)};
  }

  MetroLosses<double> losses(const std::vector<TensorD>& x) const {
    const MetroPredictions<double> pred{x[0], x[1], x[2], x[3], regress_joints(regressor, x[3]), x[4]};
    return metro_loss(pred, targets);
  }
};

}  // namespace

TEST_CASE("the METRO objective combines its terms with the official weights") {
  const SmallBatch batch;
  const MetroLosses<double> l = batch.losses(batch.predictions);
  const double expected = 1000 * (l.joints_3d.item() + l.regressed_joints_3d.item()) +
                          100 * 0.33 * (l.coarse_vertices.item() + l.mid_vertices.item() + l.full_vertices.item()) +
                          100 * (l.joints_2d.item() + l.regressed_joints_2d.item());
  CHECK(l.total.item() == doctest::Approx(expected).epsilon(1e-12));
  CHECK(l.joints_3d.item() > 0);
  CHECK(l.coarse_vertices.item() > 0);
  CHECK(l.joints_2d.item() > 0);
  // has_3d = (1, 0): changing sample 1's joints leaves the 3D term alone but moves the 2D term.
  std::vector<TensorD> moved = batch.predictions;
  moved[0] = metro::clone(moved[0]);
  metro::fill_(metro::select(moved[0], 0, 1), 3.0);
  const MetroLosses<double> m = batch.losses(moved);
  CHECK(m.joints_3d.item() == doctest::Approx(l.joints_3d.item()).epsilon(1e-14));
  CHECK(m.joints_2d.item() != doctest::Approx(l.joints_2d.item()));
}

TEST_CASE("gradcheck of every loss (float64)") {
  metro::Generator gen(5);
  const TensorD gate = metro::tensor<double>({1, 0, 1});
  const TensorD confidence = metro::rand<double>({3, 6, 1}, gen);
  const TensorD labels_3d = metro::randn<double>({3, 6, 4}, gen), labels_2d = metro::randn<double>({3, 6, 3}, gen);
  const std::vector<TensorD> pair = {metro::randn<double>({3, 6, 3}, gen), metro::randn<double>({3, 6, 3}, gen)};
  const auto check = [](const char* what, const metro::GradcheckResult& result) {
    CAPTURE(what);
    CHECK_MESSAGE(result.passed, result.report);
  };
  check("gated_l1_loss", metro::gradcheck([&](const std::vector<TensorD>& x) { return gated_l1_loss(x[0], x[1], gate); }, pair));
  check("gated_mse_loss", metro::gradcheck([&](const std::vector<TensorD>& x) { return gated_mse_loss(x[0], x[1], gate); }, pair));
  check("weighted gated_mse_loss",
        metro::gradcheck([&](const std::vector<TensorD>& x) { return gated_mse_loss(x[0], x[1], gate, confidence); }, pair));
  check("orthographic_projection",
        metro::gradcheck([](const std::vector<TensorD>& x) { return orthographic_projection(x[0], x[1]); },
                         {pair[0], metro::randn<double>({3, 3}, gen)}));
  check("center_on_pelvis", metro::gradcheck([](const std::vector<TensorD>& x) { return center_on_pelvis(x[0]); }, {pair[0]}));
  check("regress_joints", metro::gradcheck([](const std::vector<TensorD>& x) { return regress_joints(x[0], x[1]); },
                                           {metro::randn<double>({4, 6}, gen), pair[0]}));
  check("keypoint_3d_loss",
        metro::gradcheck([&](const std::vector<TensorD>& x) { return keypoint_3d_loss(x[0], labels_3d, gate); }, {pair[0]}));
  check("keypoint_2d_loss", metro::gradcheck([&](const std::vector<TensorD>& x) { return keypoint_2d_loss(x[0], labels_2d, gate); },
                                             {metro::randn<double>({3, 6, 2}, gen)}));
  const SmallBatch batch;
  check("metro_loss", metro::gradcheck([&](const std::vector<TensorD>& x) { return batch.losses(x).total; }, batch.predictions));
  // Nothing selected: 0, still differentiable (zero gradient).
  check("gated_l1_loss, all gated off",
        metro::gradcheck([](const std::vector<TensorD>& x) { return gated_l1_loss(x[0], x[1], metro::zeros<double>({3})); }, pair));
}

TEST_CASE("optimizer: a parameter listed twice is refused (it would be updated twice per step)") {
  const TensorF w = parameter(metro::ones<float>({2, 3}));
  CHECK_THROWS_AS(SGD<float>({w, w}, SGDOptions{.lr = 0.1}), metro::ValueError);
  CHECK_NOTHROW(SGD<float>({w}, SGDOptions{.lr = 0.1}));
}
