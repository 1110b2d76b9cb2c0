#pragma once
// A small, strict JSON value (RFC 8259) for checkpoint headers and configs.
//
//   json::Value v = json::parse(text, "config.json");   // FormatError on bad input
//   int64_t n = v.at("layers").as_int64();              // ValueError on wrong type / missing key
//   std::string s = v.dump();  v.dump(2);               // compact / pretty
//
// Objects keep insertion order and reject duplicate keys. Numbers are doubles;
// an integer literal that fits in int64 also keeps its exact int64 value.
#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "metro/core/error.hpp"

namespace metro::io::json {

// Nesting deeper than this is rejected, so hostile input cannot overflow the stack.
inline constexpr int max_depth = 64;

class Value;
using Array = std::vector<Value>;
using Object = std::vector<std::pair<std::string, Value>>;  // insertion order

struct Number {
  double value = 0.0;
  std::optional<std::int64_t> integer;  // set when the literal is an exact int64
};

class Value {
 public:
  enum class Kind { null, boolean, number, string, array, object };

  Value() = default;  // null
  Value(std::nullptr_t) {}
  Value(bool b) : data_(b) {}
  Value(double d) : data_(Number{d, std::nullopt}) {}
  Value(std::int64_t i) : data_(Number{static_cast<double>(i), i}) {}
  Value(int i) : Value(static_cast<std::int64_t>(i)) {}
  Value(Number n) : data_(n) {}
  Value(std::string s) : data_(std::move(s)) {}
  Value(const char* s) : data_(std::string(s)) {}
  Value(Array a) : data_(std::move(a)) {}
  Value(Object o) : data_(std::move(o)) {}

  Kind kind() const noexcept { return static_cast<Kind>(data_.index()); }
  bool is_null() const noexcept { return kind() == Kind::null; }
  bool is_bool() const noexcept { return kind() == Kind::boolean; }
  bool is_number() const noexcept { return kind() == Kind::number; }
  bool is_string() const noexcept { return kind() == Kind::string; }
  bool is_array() const noexcept { return kind() == Kind::array; }
  // A number that holds an exact int64 (an integer literal, or built from an integer).
  bool is_int64() const noexcept { return is_number() && std::get<Number>(data_).integer.has_value(); }
  bool is_object() const noexcept { return kind() == Kind::object; }

  bool as_bool() const { return get<bool>(Kind::boolean); }
  double as_double() const { return get<Number>(Kind::number).value; }
  // The exact integer; ValueError for 1.5, 1e300 or a literal outside int64.
  std::int64_t as_int64() const {
    const Number& n = get<Number>(Kind::number);
    if (!n.integer) throw ValueError("JSON: number " + format_double(n.value) + " is not an exact 64-bit integer");
    return *n.integer;
  }
  const std::string& as_string() const { return get<std::string>(Kind::string); }
  const Array& as_array() const { return get<Array>(Kind::array); }
  Array& as_array() { return const_cast<Array&>(std::as_const(*this).as_array()); }
  const Object& as_object() const { return get<Object>(Kind::object); }
  Object& as_object() { return const_cast<Object&>(std::as_const(*this).as_object()); }

  // Object member lookup: find returns nullptr when absent, at throws ValueError.
  const Value* find(std::string_view key) const {
    for (const auto& [name, value] : as_object())
      if (name == key) return &value;
    return nullptr;
  }
  bool contains(std::string_view key) const { return find(key) != nullptr; }
  const Value& at(std::string_view key) const {
    if (const Value* v = find(key)) return *v;
    throw ValueError("JSON: missing key \"" + std::string(key) + "\"");
  }
  const Value& at(std::size_t index) const {
    const Array& a = as_array();
    if (index >= a.size())
      throw ValueError("JSON: index " + std::to_string(index) + " out of range for array of " +
                       std::to_string(a.size()));
    return a[index];
  }
  // Appends a member (objects) keeping insertion order; ValueError on a duplicate key.
  void insert(std::string key, Value value) {
    if (contains(key)) throw ValueError("JSON: duplicate key \"" + key + "\"");
    as_object().emplace_back(std::move(key), std::move(value));
  }

  // Compact when indent < 0, otherwise pretty with `indent` spaces per level.
  // ValueError for NaN or infinity, which JSON cannot represent.
  std::string dump(int indent = -1) const {
    std::string out;
    dump_to(out, indent, 0);
    return out;
  }

  static const char* kind_name(Kind k) noexcept {
    constexpr const char* names[] = {"null", "boolean", "number", "string", "array", "object"};
    return names[static_cast<int>(k)];
  }

  // Shortest text that reads back to the same double.
  static std::string format_double(double d) {
    char buffer[32];
    auto result = std::to_chars(buffer, buffer + sizeof(buffer), d);
    return std::string(buffer, result.ptr);
  }

 private:
  template <class T>
  const T& get(Kind wanted) const {
    if (kind() != wanted)
      throw ValueError(std::string("JSON: expected ") + kind_name(wanted) + ", got " + kind_name(kind()));
    return std::get<T>(data_);
  }

  void dump_to(std::string& out, int indent, int level) const;

  std::variant<std::nullptr_t, bool, Number, std::string, Array, Object> data_;
};

namespace detail {

inline void append_escaped(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          constexpr char hex[] = "0123456789abcdef";
          out += "\\u00";
          out += hex[(c >> 4) & 0xF];
          out += hex[c & 0xF];
        } else {
          out += c;  // UTF-8 passes through unchanged
        }
    }
  }
  out += '"';
}

inline void append_newline(std::string& out, int indent, int level) {
  if (indent < 0) return;
  out += '\n';
  out.append(static_cast<std::size_t>(indent) * static_cast<std::size_t>(level), ' ');
}

inline void append_number(std::string& out, const Number& n) {
  if (n.integer) {
    out += std::to_string(*n.integer);
    return;
  }
  if (!std::isfinite(n.value)) throw ValueError("JSON: cannot write a non-finite number");
  // "-0" would read back as the integer 0; keep the sign of a negative zero.
  out += n.value == 0 && std::signbit(n.value) ? "-0.0" : Value::format_double(n.value);
}

}  // namespace detail

inline void Value::dump_to(std::string& out, int indent, int level) const {
  switch (kind()) {
    case Kind::null: out += "null"; return;
    case Kind::boolean: out += as_bool() ? "true" : "false"; return;
    case Kind::number: detail::append_number(out, std::get<Number>(data_)); return;
    case Kind::string: detail::append_escaped(out, as_string()); return;
    case Kind::array: {
      const Array& a = as_array();
      out += '[';
      for (std::size_t i = 0; i < a.size(); ++i) {
        if (i > 0) out += ',';
        detail::append_newline(out, indent, level + 1);
        a[i].dump_to(out, indent, level + 1);
      }
      if (!a.empty()) detail::append_newline(out, indent, level);
      out += ']';
      return;
    }
    case Kind::object: {
      const Object& o = as_object();
      out += '{';
      for (std::size_t i = 0; i < o.size(); ++i) {
        if (i > 0) out += ',';
        detail::append_newline(out, indent, level + 1);
        detail::append_escaped(out, o[i].first);
        out += indent < 0 ? ":" : ": ";
        o[i].second.dump_to(out, indent, level + 1);
      }
      if (!o.empty()) detail::append_newline(out, indent, level);
      out += '}';
      return;
    }
  }
}

namespace detail {

// Recursive-descent parser over the whole text; every error names the byte offset.
class Parser {
 public:
  Parser(std::string_view text, const std::string& source) : text_(text), source_(source) {}

  Value parse_document() {
    Value v = parse_value(0);
    skip_whitespace();
    if (pos_ != text_.size()) fail("unexpected trailing characters");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& reason) const { fail_at(reason, pos_); }
  [[noreturn]] void fail_at(const std::string& reason, std::size_t offset) const {
    throw FormatError(source_, "JSON: " + reason + " at offset " + std::to_string(offset));
  }

  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }

  void skip_whitespace() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) ++pos_;
  }

  void expect_literal(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) fail("invalid literal");
    pos_ += word.size();
  }

  Value parse_value(int depth) {
    skip_whitespace();
    if (at_end()) fail("unexpected end of input");
    switch (peek()) {
      case '{': return parse_object(depth + 1);
      case '[': return parse_array(depth + 1);
      case '"': return Value(parse_string());
      case 't': expect_literal("true"); return Value(true);
      case 'f': expect_literal("false"); return Value(false);
      case 'n': expect_literal("null"); return Value();
      default: return Value(parse_number());
    }
  }

  void check_depth(int depth) const {
    if (depth > max_depth) fail("nesting deeper than " + std::to_string(max_depth));
  }

  Value parse_array(int depth) {
    check_depth(depth);
    ++pos_;  // '['
    Array items;
    skip_whitespace();
    if (peek() == ']') {
      ++pos_;
      return Value(std::move(items));
    }
    while (true) {
      items.push_back(parse_value(depth));
      skip_whitespace();
      if (peek() == ']') break;
      if (peek() != ',') fail("expected ',' or ']' in array");
      ++pos_;
    }
    ++pos_;
    return Value(std::move(items));
  }

  Value parse_object(int depth) {
    check_depth(depth);
    ++pos_;  // '{'
    Value object{Object{}};
    skip_whitespace();
    if (peek() == '}') {
      ++pos_;
      return object;
    }
    while (true) {
      skip_whitespace();
      if (peek() != '"') fail("expected string key in object");
      const std::size_t key_offset = pos_;
      std::string key = parse_string();
      if (object.contains(key)) fail_at("duplicate key \"" + key + "\"", key_offset);
      skip_whitespace();
      if (peek() != ':') fail("expected ':' after object key");
      ++pos_;
      Value member = parse_value(depth);
      object.as_object().emplace_back(std::move(key), std::move(member));
      skip_whitespace();
      if (peek() == '}') break;
      if (peek() != ',') fail("expected ',' or '}' in object");
      ++pos_;
    }
    ++pos_;
    return object;
  }

  // Number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  Number parse_number() {
    const std::size_t start = pos_;
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
    } else if (is_digit(peek())) {
      skip_digits();
    } else {
      fail(pos_ == start ? "unexpected character" : "expected digit after '-'");
    }
    bool integral = true;
    if (peek() == '.') {
      ++pos_;
      if (!is_digit(peek())) fail("expected digit after '.'");
      skip_digits();
      integral = false;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!is_digit(peek())) fail("expected digit in exponent");
      skip_digits();
      integral = false;
    }
    return make_number(text_.substr(start, pos_ - start), integral, start);
  }

  Number make_number(std::string_view literal, bool integral, std::size_t offset) const {
    Number n;
    const char* first = literal.data();
    const char* last = first + literal.size();
    auto [ptr, ec] = std::from_chars(first, last, n.value);
    if (ec == std::errc::result_out_of_range) fail_at("number out of range", offset);
    if (ec != std::errc() || ptr != last) fail_at("invalid number", offset);
    std::int64_t exact = 0;
    if (integral) {
      auto int_result = std::from_chars(first, last, exact);
      if (int_result.ec == std::errc() && int_result.ptr == last) n.integer = exact;
    }
    return n;
  }

  static bool is_digit(char c) { return c >= '0' && c <= '9'; }
  void skip_digits() {
    while (is_digit(peek())) ++pos_;
  }

  std::string parse_string() {
    ++pos_;  // opening quote
    std::string out;
    while (true) {
      if (at_end()) fail("unterminated string");
      const char c = text_[pos_];
      if (c == '"') break;
      if (c == '\\') {
        parse_escape(out);
      } else if (static_cast<unsigned char>(c) < 0x20) {
        fail("unescaped control character in string");
      } else if (static_cast<unsigned char>(c) < 0x80) {
        out += c;
        ++pos_;
      } else {
        copy_utf8_sequence(out);
      }
    }
    ++pos_;
    return out;
  }

  void parse_escape(std::string& out) {
    ++pos_;  // backslash
    if (at_end()) fail("unterminated escape");
    const char c = text_[pos_++];
    switch (c) {
      case '"': out += '"'; return;
      case '\\': out += '\\'; return;
      case '/': out += '/'; return;
      case 'b': out += '\b'; return;
      case 'f': out += '\f'; return;
      case 'n': out += '\n'; return;
      case 'r': out += '\r'; return;
      case 't': out += '\t'; return;
      case 'u': append_utf8(out, parse_unicode_escape()); return;
      default: --pos_; fail("invalid escape character");
    }
  }

  // \uXXXX, combining a UTF-16 surrogate pair into one code point.
  std::uint32_t parse_unicode_escape() {
    const std::uint32_t high = parse_hex4();
    if (high >= 0xDC00 && high <= 0xDFFF) fail("unpaired low surrogate");
    if (high < 0xD800 || high > 0xDBFF) return high;
    if (text_.substr(pos_, 2) != "\\u") fail("unpaired high surrogate");
    pos_ += 2;
    const std::uint32_t low = parse_hex4();
    if (low < 0xDC00 || low > 0xDFFF) fail("invalid low surrogate");
    return 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
  }

  std::uint32_t parse_hex4() {
    if (text_.size() - pos_ < 4) fail("truncated \\u escape");
    std::uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[pos_];
      int digit = -1;
      if (c >= '0' && c <= '9') digit = c - '0';
      if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
      if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
      if (digit < 0) fail("invalid hex digit in \\u escape");
      value = value * 16 + static_cast<std::uint32_t>(digit);
      ++pos_;
    }
    return value;
  }

  static void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  // Copies one well-formed UTF-8 sequence (no overlongs, surrogates or > U+10FFFF).
  void copy_utf8_sequence(std::string& out) {
    const auto lead = static_cast<unsigned char>(text_[pos_]);
    int length = 0;
    std::uint32_t cp = 0;
    if (lead >= 0xC2 && lead <= 0xDF) length = 2, cp = lead & 0x1F;
    else if (lead >= 0xE0 && lead <= 0xEF) length = 3, cp = lead & 0x0F;
    else if (lead >= 0xF0 && lead <= 0xF4) length = 4, cp = lead & 0x07;
    else fail("invalid UTF-8 lead byte");
    if (text_.size() - pos_ < static_cast<std::size_t>(length)) fail("truncated UTF-8 sequence");
    for (int i = 1; i < length; ++i) {
      const auto byte = static_cast<unsigned char>(text_[pos_ + static_cast<std::size_t>(i)]);
      if ((byte & 0xC0) != 0x80) fail("invalid UTF-8 continuation byte");
      cp = (cp << 6) | (byte & 0x3F);
    }
    constexpr std::uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < smallest[length] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) fail("invalid UTF-8 code point");
    out.append(text_.substr(pos_, static_cast<std::size_t>(length)));
    pos_ += static_cast<std::size_t>(length);
  }

  std::string_view text_;
  const std::string& source_;
  std::size_t pos_ = 0;
};

}  // namespace detail

// Parses one JSON document; FormatError(source_name, "JSON: <reason> at offset N") on malformed input.
inline Value parse(std::string_view text, const std::string& source_name) {
  return detail::Parser(text, source_name).parse_document();
}

}  // namespace metro::io::json
