#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "metro/io/cli.hpp"
#include "metro/io/json.hpp"
#include "metro/io/safetensors.hpp"

namespace fs = std::filesystem;
using namespace metro::io;

namespace {

// The FormatError message of parse(text), or "" when it parses.
std::string json_error(std::string_view text) {
  try {
    json::parse(text, "test.json");
  } catch (const metro::FormatError& e) {
    return e.what();
  }
  return "";
}

// A fresh directory for this test process, removed at exit.
struct TempDir {
  fs::path path = fs::temp_directory_path() / ("metro_test_io_" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string format_error_of_load(const std::string& path) {
  try {
    load_safetensors(path);
  } catch (const metro::FormatError& e) {
    return e.what();
  }
  return "";
}

SafeTensorsFile sample_checkpoint() {
  SafeTensorsFile file;
  file.tensors["weight"] = make_record<float>({2, 3}, std::vector<float>{-1.f, -0.5f, 0.f, 0.5f, 1.f, 1.5f});
  file.tensors["bias"] = make_record<double>({2}, std::vector<double>{0.1, -2.5e300});
  file.tensors["steps"] = make_record<std::int64_t>({3}, std::vector<std::int64_t>{-1, 0, std::int64_t{1} << 40});
  file.tensors["index"] = make_record<std::int32_t>({1, 1}, std::vector<std::int32_t>{-7});
  file.tensors["a_mask"] = make_record<std::uint8_t>({3}, std::vector<std::uint8_t>{0, 7, 255});
  file.tensors["empty"] = make_record<float>({0, 4}, std::vector<float>{});
  file.tensors["scalar"] = make_record<float>({}, std::vector<float>{42.f});
  file.metadata = {{"epoch", "12"}, {"note", "caf\xC3\xA9 \"quoted\""}};
  return file;
}

}  // namespace

// ------------------------------------------------------------------ JSON

TEST_CASE("json: parses nested values and keeps object order") {
  const json::Value v = json::parse(R"( {"z": [1, -2.5e3, true, null], "a": {"s": "x"}, "m": false} )", "t");
  CHECK(v.at("z").at(0).as_int64() == 1);
  CHECK(v.at("z").at(1).as_double() == -2500.0);
  CHECK(v.at("z").at(2).as_bool());
  CHECK(v.at("z").at(3).is_null());
  CHECK(v.at("a").at("s").as_string() == "x");
  CHECK(v.dump() == R"({"z":[1,-2500,true,null],"a":{"s":"x"},"m":false})");
}

TEST_CASE("json: int64 literals stay exact beyond 2^53") {
  const json::Value v = json::parse("[9007199254740993, -9223372036854775808, 9223372036854775808, 1.0]", "t");
  CHECK(v.at(0).as_int64() == 9007199254740993LL);
  CHECK(v.at(1).as_int64() == INT64_MIN);
  CHECK_FALSE(v.at(2).is_int64());  // one past INT64_MAX: only a double
  CHECK(v.at(2).as_double() == 9223372036854775808.0);
  CHECK_THROWS_AS(v.at(3).as_int64(), metro::ValueError);
  CHECK(v.dump() == "[9007199254740993,-9223372036854775808,9223372036854775808,1]");
}

TEST_CASE("json: string escapes, \\u and surrogate pairs decode to UTF-8 and dump back") {
  const json::Value v = json::parse(R"(["a\"b\\c\/\b\f\n\r\t", "\u00e9\u20AC", "\ud83d\ude00", "\u0001"])", "t");
  CHECK(v.at(0).as_string() == "a\"b\\c/\b\f\n\r\t");
  CHECK(v.at(1).as_string() == "\xC3\xA9\xE2\x82\xAC");
  CHECK(v.at(2).as_string() == "\xF0\x9F\x98\x80");
  CHECK(v.at(3).as_string() == std::string(1, '\x01'));
  CHECK(v.dump() == "[\"a\\\"b\\\\c/\\b\\f\\n\\r\\t\",\"\xC3\xA9\xE2\x82\xAC\",\"\xF0\x9F\x98\x80\",\"\\u0001\"]");
  CHECK(json::parse(v.dump(), "t").dump() == v.dump());
}

TEST_CASE("json: pretty dump") {
  const json::Value v = json::parse(R"({"a":[1,{}],"b":[]})", "t");
  CHECK(v.dump(2) == "{\n  \"a\": [\n    1,\n    {}\n  ],\n  \"b\": []\n}");
}

TEST_CASE("json: doubles round-trip through dump") {
  json::Value v{json::Array{0.1, 1e-300, -123456.789, 5e-324}};
  const json::Value back = json::parse(v.dump(), "t");
  for (std::size_t i = 0; i < 4; ++i) CHECK(back.at(i).as_double() == v.at(i).as_double());
  CHECK_THROWS_AS(json::Value(std::nan("")).dump(), metro::ValueError);
  // A negative zero keeps its sign and stays a double ("-0" would read back as the integer 0).
  CHECK(json::Value(-0.0).dump() == "-0.0");
  CHECK(std::signbit(json::parse("-0.0", "t").as_double()));
  CHECK(json::parse("-0", "t").as_int64() == 0);
}

TEST_CASE("json: malformed input names the reason and the offset") {
  CHECK(json_error("") == "test.json: JSON: unexpected end of input at offset 0");
  CHECK(json_error("[1,]") == "test.json: JSON: unexpected character at offset 3");
  CHECK(json_error("{\"a\":1,}") == "test.json: JSON: expected string key in object at offset 7");
  CHECK(json_error("{\"a\" 1}") == "test.json: JSON: expected ':' after object key at offset 5");
  CHECK(json_error("[1] 2") == "test.json: JSON: unexpected trailing characters at offset 4");
  CHECK(json_error("01").find("trailing characters at offset 1") != std::string::npos);
  CHECK(json_error("1.").find("expected digit after '.' at offset 2") != std::string::npos);
  CHECK(json_error("-").find("expected digit after '-'") != std::string::npos);
  CHECK(json_error("1e").find("expected digit in exponent") != std::string::npos);
  CHECK(json_error("1e999").find("number out of range at offset 0") != std::string::npos);
  CHECK(json_error("tru").find("invalid literal at offset 0") != std::string::npos);
  CHECK(json_error("\"abc").find("unterminated string") != std::string::npos);
  CHECK(json_error("\"\\x\"").find("invalid escape character at offset 2") != std::string::npos);
  CHECK(json_error("\"\\u12zz\"").find("invalid hex digit") != std::string::npos);
  CHECK(json_error("\"\\u12").find("truncated \\u escape") != std::string::npos);
  CHECK(json_error("\"\\ud800\"").find("unpaired high surrogate") != std::string::npos);
  CHECK(json_error("\"\\udc00\"").find("unpaired low surrogate") != std::string::npos);
  CHECK(json_error("\"a\tb\"").find("unescaped control character in string at offset 2") != std::string::npos);
  CHECK(json_error("\"\xFF\"").find("invalid UTF-8 lead byte") != std::string::npos);
  CHECK(json_error("\"\xC0\x80\"").find("invalid UTF-8 lead byte") != std::string::npos);  // overlong NUL
  CHECK(json_error("\"\xE0\x80\x80\"").find("invalid UTF-8 code point") != std::string::npos);
  CHECK(json_error("\"\xED\xA0\x80\"").find("invalid UTF-8 code point") != std::string::npos);  // surrogate
  CHECK(json_error("\"\xE2\x82\"").find("invalid UTF-8 continuation byte") != std::string::npos);
  CHECK(json_error("{\"k\":1,\"k\":2}") == "test.json: JSON: duplicate key \"k\" at offset 7");
  CHECK(json_error(std::string("[1\0]", 4)).find("expected ',' or ']' in array at offset 2") != std::string::npos);
}

TEST_CASE("json: nesting is limited to 64 levels") {
  const auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  CHECK(json_error(nested(64)) == "");
  CHECK(json_error(nested(65)) == "test.json: JSON: nesting deeper than 64 at offset 64");
  CHECK(json_error(nested(100000)).find("nesting deeper than 64") != std::string::npos);
}

TEST_CASE("json: accessors report wrong types and missing keys") {
  const json::Value v = json::parse(R"({"n": 3, "s": "x"})", "t");
  CHECK_THROWS_WITH_AS(v.at("n").as_string(), "JSON: expected string, got number", metro::ValueError);
  CHECK_THROWS_WITH_AS(v.at("missing"), "JSON: missing key \"missing\"", metro::ValueError);
  CHECK_THROWS_WITH_AS(v.at("s").at(0), "JSON: expected array, got string", metro::ValueError);
  CHECK_THROWS_WITH_AS(json::parse("[1]", "t").at(1), "JSON: index 1 out of range for array of 1", metro::ValueError);
  CHECK(v.find("s") != nullptr);
  CHECK(v.find("q") == nullptr);
}

// ------------------------------------------------------------------ safetensors

TEST_CASE("safetensors: round trip keeps names, dtypes, shapes, values and metadata") {
  TempDir dir;
  const SafeTensorsFile original = sample_checkpoint();
  save_safetensors(dir.file("a.safetensors"), original);
  const SafeTensorsFile loaded = load_safetensors(dir.file("a.safetensors"));
  CHECK(loaded.metadata == original.metadata);
  REQUIRE(loaded.tensors.size() == original.tensors.size());
  for (const auto& entry : original.tensors) {
    const std::string& name = entry.first;
    const TensorRecord& record = entry.second;
    CAPTURE(name);
    const TensorRecord& back = loaded.tensors.at(name);
    CHECK(back.dtype == record.dtype);
    CHECK(back.shape == record.shape);
    CHECK(back.data == record.data);
  }
  CHECK(record_to_vector<double>(loaded.tensors.at("bias"), "bias") == std::vector<double>{0.1, -2.5e300});
  CHECK(record_to_vector<std::int64_t>(loaded.tensors.at("steps"), "steps")[2] == std::int64_t{1} << 40);
  CHECK(record_to_vector<float>(loaded.tensors.at("scalar"), "scalar") == std::vector<float>{42.f});
}

TEST_CASE("safetensors: header is padded to 8 bytes, names sorted, every tensor aligned") {
  TempDir dir;
  save_safetensors(dir.file("a.safetensors"), sample_checkpoint());
  const std::string bytes = read_bytes(dir.file("a.safetensors"));
  std::uint64_t header_length = 0;
  std::memcpy(&header_length, bytes.data(), 8);
  CHECK(header_length % 8 == 0);
  const json::Value header = json::parse(std::string_view(bytes).substr(8, header_length), "h");
  std::vector<std::string> names;
  for (const auto& [name, info] : header.as_object()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"__metadata__", "a_mask", "bias", "empty", "index", "scalar", "steps", "weight"});
  for (const auto& member : header.as_object()) {
    const std::string& name = member.first;
    const json::Value& info = member.second;
    if (name == "__metadata__") continue;
    const std::string& dtype = info.at("dtype").as_string();
    const std::uint64_t element = dtype == "U8" ? 1 : (dtype == "F64" || dtype == "I64" ? 8 : 4);
    CAPTURE(name);
    CHECK((8 + header_length + static_cast<std::uint64_t>(info.at("data_offsets").at(0).as_int64())) % element == 0);
  }
  // 2*8 (bias) + 3*8 (steps) + 6*4 + 1*4 + 0 + 4 (f32, i32) + 3 (u8)
  CHECK(bytes.size() == 8 + header_length + 16 + 24 + 24 + 4 + 4 + 3);
}

TEST_CASE("safetensors: save is atomic and replaces an existing file") {
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  SafeTensorsFile first;
  first.tensors["x"] = make_record<float>({1}, std::vector<float>{1.f});
  save_safetensors(path, first);
  save_safetensors(path, sample_checkpoint());
  CHECK(load_safetensors(path).tensors.size() == 7);
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(dir.path)) files.push_back(entry.path().filename().string());
  CHECK(files == std::vector<std::string>{"ckpt.safetensors"});  // no leftover .tmp.<pid>
  CHECK_THROWS_AS(save_safetensors(dir.file("no/such/dir/x.safetensors"), first), metro::IOError);
  CHECK_THROWS_AS(load_safetensors(dir.file("missing.safetensors")), metro::IOError);
}

TEST_CASE("safetensors: writer rejects inconsistent records") {
  TempDir dir;
  SafeTensorsFile file;
  file.tensors["x"] = TensorRecord{DType::f32, {2, 2}, std::vector<std::byte>(12)};
  CHECK_THROWS_WITH_AS(save_safetensors(dir.file("x"), file), "safetensors: tensor \"x\" holds 12 bytes, its shape needs 16",
                       metro::ValueError);
  file.tensors.clear();
  file.tensors["__metadata__"] = make_record<float>({1}, std::vector<float>{1.f});
  CHECK_THROWS_AS(save_safetensors(dir.file("x"), file), metro::ValueError);
  CHECK_FALSE(fs::exists(dir.file("x")));
  CHECK_THROWS_AS(make_record<float>({2, 2}, std::vector<float>(3)), metro::ShapeError);
  CHECK_THROWS_AS(make_record<float>({-1}, std::vector<float>{}), metro::ValueError);
}

TEST_CASE("safetensors: record_to_vector checks the dtype") {
  const TensorRecord record = make_record<std::int32_t>({2}, std::vector<std::int32_t>{1, 2});
  CHECK(record_to_vector<std::int32_t>(record, "r") == std::vector<std::int32_t>{1, 2});
  CHECK_THROWS_WITH_AS(record_to_vector<float>(record, "r"), "safetensors: tensor \"r\" has dtype I32, expected F32",
                       metro::ValueError);
}

TEST_CASE("safetensors: loads a file written by Python (tools/read_safetensors.py --write-sample)") {
  // json.dumps spacing, metadata last, header not padded: a different writer than ours.
  const SafeTensorsFile file = load_safetensors(METRO_TEST_DATA_DIR "/../fuzz/corpus/safetensors/python_written.safetensors");
  CHECK(file.metadata == std::map<std::string, std::string>{{"epoch", "7"}, {"note", "caf\xC3\xA9"}});
  CHECK(record_to_vector<float>(file.tensors.at("weight"), "weight") == std::vector<float>{-1.f, -0.5f, 0.f, 0.5f, 1.f, 1.5f});
  CHECK(file.tensors.at("weight").shape == std::vector<std::int64_t>{2, 3});
  CHECK(record_to_vector<std::int64_t>(file.tensors.at("steps"), "steps") == std::vector<std::int64_t>{-1, 0, std::int64_t{1} << 40});
  CHECK(record_to_vector<std::uint8_t>(file.tensors.at("mask"), "mask") == std::vector<std::uint8_t>{0, 1, 2, 3, 255});
  CHECK(record_to_vector<double>(file.tensors.at("scalar"), "scalar") == std::vector<double>{3.141592653589793});
  CHECK(file.tensors.at("scalar").shape.empty());
  CHECK(file.tensors.at("empty").shape == std::vector<std::int64_t>{0, 4});
  CHECK(file.tensors.at("empty").data.empty());
}

TEST_CASE("safetensors: every bad checkpoint in tests/data/bad gives its FormatError") {
  std::ifstream manifest(METRO_TEST_DATA_DIR "/bad/ckpt_expected.txt");
  REQUIRE(manifest.good());
  std::string line;
  int cases = 0;
  while (std::getline(manifest, line)) {
    const std::size_t tab = line.find('\t');
    REQUIRE(tab != std::string::npos);
    const std::string path = METRO_TEST_DATA_DIR "/bad/" + line.substr(0, tab);
    CAPTURE(path);
    const std::string message = format_error_of_load(path);
    CHECK(message.rfind(path + ": ", 0) == 0);
    CHECK(message.find(line.substr(tab + 1)) != std::string::npos);
    ++cases;
  }
  CHECK(cases >= 20);
}

TEST_CASE("safetensors: every truncation of a valid file is rejected cleanly") {
  TempDir dir;
  save_safetensors(dir.file("a.safetensors"), sample_checkpoint());
  const std::string bytes = read_bytes(dir.file("a.safetensors"));
  const auto* data = reinterpret_cast<const std::byte*>(bytes.data());
  CHECK(parse_safetensors({data, bytes.size()}, "mem").tensors.size() == 7);
  for (std::size_t length = 0; length < bytes.size(); ++length) {
    CAPTURE(length);
    CHECK_THROWS_AS(parse_safetensors({data, length}, "mem"), metro::FormatError);
  }
}

// ------------------------------------------------------------------ command-line flags

namespace {

struct Options {
  int epochs = 0;
  std::int64_t samples = 0;
  float lr = 0;
  double margin = 0;
  std::string out;
  bool verbose = true;
};

FlagParser make_parser(Options& o) {
  FlagParser flags("train", "Trains a model.");
  flags.add("epochs", o.epochs, 10, "training epochs", {1, 1000});
  flags.add("samples", o.samples, std::int64_t{1} << 40, "samples to draw");
  flags.add("lr", o.lr, 1e-4f, "learning rate", {0.0f, 1.0f});
  flags.add("margin", o.margin, -0.5, "signed margin");
  flags.add("out", o.out, "ckpt.safetensors", "output path");
  flags.add_switch("verbose", o.verbose, "print more");
  return flags;
}

std::string usage_error(std::vector<const char*> args) {
  Options o;
  FlagParser flags = make_parser(o);
  args.insert(args.begin(), "train");
  try {
    flags.parse(static_cast<int>(args.size()), args.data());
  } catch (const metro::UsageError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("cli: defaults, both value forms and switches") {
  Options o;
  FlagParser flags = make_parser(o);
  CHECK(o.epochs == 10);
  CHECK(o.samples == std::int64_t{1} << 40);
  CHECK(o.out == "ckpt.safetensors");
  CHECK_FALSE(o.verbose);
  const char* argv[] = {"train", "--epochs", "20", "--lr=0.5", "--out=a=b.st", "--verbose", "--margin", "-2e-3",
                        "--samples=+9000000000"};
  CHECK(flags.parse(9, argv));
  CHECK(o.epochs == 20);
  CHECK(o.lr == 0.5f);
  CHECK(o.out == "a=b.st");
  CHECK(o.verbose);
  CHECK(o.margin == -2e-3);
  CHECK(o.samples == 9000000000LL);
  const char* off[] = {"train", "--verbose=false"};
  CHECK(flags.parse(2, off));
  CHECK_FALSE(o.verbose);
}

TEST_CASE("cli: --help prints every flag with its default and range") {
  Options o;
  FlagParser flags = make_parser(o);
  std::ostringstream out;
  const char* argv[] = {"train", "--epochs", "5", "--help"};
  CHECK_FALSE(flags.parse(4, argv, out));
  const std::string usage = out.str();
  CHECK(usage.rfind("Usage: train [flags]\nTrains a model.\n", 0) == 0);
  CHECK(usage.find("--epochs VALUE\n      training epochs (default 10 range [1, 1000])") != std::string::npos);
  CHECK(usage.find("--lr VALUE\n      learning rate (default 1e-04 range [0, 1])") != std::string::npos);
  CHECK(usage.find("--out VALUE\n      output path (default \"ckpt.safetensors\")") != std::string::npos);
  CHECK(usage.find("--verbose\n      print more") != std::string::npos);
}

TEST_CASE("cli: errors name the flag and the reason") {
  CHECK(usage_error({"--epoch", "3"}) == "--epoch: unknown flag (see --help)");
  CHECK(usage_error({"--epochs"}) == "--epochs: missing value");
  CHECK(usage_error({"--epochs", "12x"}) == "--epochs: cannot parse \"12x\" as a number");
  CHECK(usage_error({"--epochs="}) == "--epochs: cannot parse \"\" as a number");
  CHECK(usage_error({"--epochs", "2.5"}) == "--epochs: cannot parse \"2.5\" as a number");
  CHECK(usage_error({"--epochs", "0"}) == "--epochs: value 0 is outside range [1, 1000]");
  CHECK(usage_error({"--epochs", "99999999999"}) == "--epochs: value \"99999999999\" is out of range for its type");
  CHECK(usage_error({"--lr", "1.5"}) == "--lr: value 1.5 is outside range [0, 1]");
  CHECK(usage_error({"--lr", "nan"}) == "--lr: value must be finite, got \"nan\"");
  CHECK(usage_error({"--verbose=maybe"}) == "--verbose: expected true/false/1/0, got \"maybe\"");
  CHECK(usage_error({"data.txt"}) == "unexpected argument \"data.txt\"");
  CHECK(usage_error({"--"}) == "unexpected argument \"--\"");
  CHECK(usage_error({"--epochs", "5"}) == "");
}

TEST_CASE("cli: declaring a flag twice is a programming error") {
  int a = 0;
  FlagParser flags("p", "d");
  flags.add("n", a, 1, "n");
  CHECK_THROWS_AS(flags.add("n", a, 2, "again"), metro::ValueError);
}
