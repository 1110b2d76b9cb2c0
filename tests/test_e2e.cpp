// End to end: the example programs as a user runs them, on a tiny synthetic set.
//   metro_synth -> metro_train (overfits 2 images; resumes exactly) -> metro_eval -> metro_infer,
//   then the same with a body file (metro_body_export -> metro_train --body ...)
// The programs are found next to this test: <build>/tests/.. /examples/. In builds
// without the examples (METRO_BUILD_EXAMPLES=OFF) the test says it is skipped and ctest
// reports it as skipped; in builds with them a missing program is a failure.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

fs::path programs_dir() { return fs::canonical("/proc/self/exe").parent_path().parent_path() / "examples"; }

// Runs `program args` with output appended to `log`; returns the exit status.
int run_program(const std::string& program, const std::string& args, const fs::path& log) {
  const std::string command = (programs_dir() / program).string() + " " + args + " >>" + log.string() + " 2>&1";
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The "loss" column (third) of metro_train's log.csv, one value per step.
std::vector<double> logged_losses(const fs::path& csv) {
  std::ifstream in(csv);
  std::string line;
  std::vector<double> losses;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::stringstream cells(line);
    std::string cell;
    for (int column = 0; column < 3; ++column) std::getline(cells, cell, ',');
    losses.push_back(std::stod(cell));
  }
  return losses;
}

double mean_of(const std::vector<double>& v, std::size_t first, std::size_t count) {
  double total = 0;
  for (std::size_t i = first; i < first + count; ++i) total += v.at(i);
  return total / static_cast<double>(count);
}

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("metro_e2e_" + std::to_string(getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
};

}  // namespace

TEST_CASE("synth -> train -> eval -> infer") {
#if !METRO_EXAMPLES_BUILT
  MESSAGE("skipped: this build has no example programs (METRO_BUILD_EXAMPLES=OFF)");
  std::exit(77);  // ctest's SKIP_RETURN_CODE for this test (tests/CMakeLists.txt)
#endif
  for (const char* program : {"metro_synth", "metro_train", "metro_eval", "metro_infer", "metro_body_export"})
    REQUIRE_MESSAGE(fs::exists(programs_dir() / program), "not built: " << (programs_dir() / program).string());
  const TempDir tmp;
  const fs::path log = tmp.path / "log.txt", data = tmp.path / "data", few = tmp.path / "few";
  INFO("program output: " << read_text(log));
  REQUIRE(run_program("metro_synth", "--count 32 --seed 3 --size 64 --threads 2 --out " + data.string(), log) == 0);
  REQUIRE(run_program("metro_synth", "--count 2 --seed 4 --size 64 --threads 2 --out " + few.string(), log) == 0);

  // Overfitting 2 plain images: the loss must fall well below its start.
  const std::string tiny = " --image-size 32 --batch-size 2 --lr 1e-3 --schedule constant --warmup-steps 0 --dropout 0 --no-augment"
                           " --eval-samples 8 --threads 2 --data " + few.string() + " --val " + data.string();
  const fs::path run = tmp.path / "run";
  REQUIRE(run_program("metro_train", "--steps 10 --out " + run.string() + tiny, log) == 0);
  const std::vector<double> losses = logged_losses(run / "log.csv");
  REQUIRE(losses.size() == 10);
  CHECK(mean_of(losses, 7, 3) < 0.6 * mean_of(losses, 0, 3));
  const std::string metrics = read_text(run / "metrics.json");
  CHECK(metrics.find("\"pa_mpjpe_mm\"") != std::string::npos);
  CHECK(metrics.find("\"baseline\"") != std::string::npos);

  // Resuming at step 5 reproduces the uninterrupted run's step 10 exactly.
  const fs::path split = tmp.path / "split";
  REQUIRE(run_program("metro_train", "--steps 5 --out " + split.string() + tiny, log) == 0);
  REQUIRE(run_program("metro_train", "--steps 10 --resume " + (split / "checkpoint.safetensors").string() + " --out " + split.string() + tiny, log) == 0);
  const std::vector<double> resumed = logged_losses(split / "log.csv");
  REQUIRE(resumed.size() == 10);
  CHECK(resumed.back() == doctest::Approx(losses.back()).epsilon(1e-5));

  // Evaluation writes all metrics; a missing checkpoint is one clear error.
  const fs::path json = tmp.path / "eval.json";
  const std::string checkpoint = (run / "checkpoint.safetensors").string();
  REQUIRE(run_program("metro_eval", "--checkpoint " + checkpoint + " --data " + data.string() + " --baseline-from " + few.string() +
                                        " --max-samples 8 --json " + json.string(), log) == 0);
  CHECK(read_text(json).find("\"f_at_15mm\"") != std::string::npos);
  CHECK(run_program("metro_eval", "--checkpoint " + (tmp.path / "missing.safetensors").string() + " --data " + data.string(), log) == 1);
  CHECK(read_text(log).find("metro_eval: error: ") != std::string::npos);

  // Inference writes a complete OBJ of the full mesh with finite coordinates.
  const fs::path image = data / "images" / "train_00000000.png", out = tmp.path / "infer";
  REQUIRE(run_program("metro_infer", "--checkpoint " + checkpoint + " --out " + out.string() + " " + image.string(), log) == 0);
  std::ifstream obj(out / "train_00000000.obj");
  std::string kind;
  int vertices = 0, faces = 0;
  bool finite = true;
  for (std::string line; std::getline(obj, line);) {
    std::istringstream words(line);
    double x = 0, y = 0, z = 0;
    words >> kind >> x >> y >> z;
    if (kind == "v") ++vertices, finite = finite && std::isfinite(x + y + z);
    if (kind == "f") ++faces;
  }
  CHECK(vertices == 6890);
  CHECK(faces > 6890);
  CHECK(finite);
  CHECK(fs::file_size(out / "train_00000000_overlay.png") > 100);

  // A body file (here the procedural body's, as metro_body_export writes it) trains
  // the same network; its checkpoint carries the body, for evaluation, inference and
  // resumption, which refuses another body.
  REQUIRE(run_program("metro_body_export", tmp.path.string() + " 0", log) == 0);
  const std::string body = " --body " + (tmp.path / "body_small.safetensors").string();
  const fs::path with_file = tmp.path / "with_file";
  REQUIRE(run_program("metro_train", "--steps 2 --out " + with_file.string() + tiny + body, log) == 0);
  const std::vector<double> file_losses = logged_losses(with_file / "log.csv");
  REQUIRE(file_losses.size() == 2);
  CHECK(file_losses[0] == doctest::Approx(losses[0]).epsilon(1e-4));  // the same body, maybe rebuilt to other last bits
  const std::string file_checkpoint = (with_file / "checkpoint.safetensors").string();
  CHECK(run_program("metro_eval", "--checkpoint " + file_checkpoint + " --data " + data.string() + " --max-samples 4", log) == 0);
  CHECK(run_program("metro_infer", "--checkpoint " + file_checkpoint + " --out " + out.string() + " " + image.string(), log) == 0);
  CHECK(run_program("metro_train", "--steps 3 --resume " + file_checkpoint + " --out " + with_file.string() + tiny + body, log) == 0);
  CHECK(logged_losses(with_file / "log.csv").size() == 3);
  const std::string other_body = " --body " + (tmp.path / "body_paper.safetensors").string();
  CHECK(run_program("metro_train", "--steps 4 --resume " + file_checkpoint + " --out " + with_file.string() + tiny + other_body, log) == 1);
  CHECK(read_text(log).find("was trained on another body than") != std::string::npos);
}
