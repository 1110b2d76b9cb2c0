// Builds a small METRO through the installed package, runs a forward and a
// backward pass, and checks the output shapes. Exit code 0 means it all worked.
#include <iostream>

#include "metro/metro.hpp"

int main() {
  using namespace metro;
  try {
    model::MetroConfig config = model::small(/*coarse vertices*/ 20, /*mid, full*/ {40, 80}, /*image size*/ 64);
    config.num_joints = 14;
    Generator gen(0);
    model::MetroNetwork<float> net(config, gen);
    net.set_template(randn<float>({14, 3}, gen), randn<float>({20, 3}, gen));
    net.set_fixed_upsampling(randn<float>({80, 40}, gen));  // small() keeps its last upsampling fixed
    const auto out = net.forward(randn<float>({2, 3, 64, 64}, gen));
    sum(out.full_vertices).backward();
    const bool ok = out.camera.shape() == Shape{2, 3} && out.joints.shape() == Shape{2, 14, 3} &&
                    out.full_vertices.shape() == Shape{2, 80, 3} && net.parameters().front().grad().defined();
    std::cout << "consumer: full vertices " << out.full_vertices.shape().str() << (ok ? ", ok\n" : ", WRONG\n");
    return ok ? 0 : 1;
  } catch (const Error& e) {
    std::cerr << "consumer: error: " << e.what() << "\n";
    return 1;
  }
}
