#include "nn/efficientnet_config_text.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>

#include "kernels/activation.h"

namespace sg::nn {

namespace {

std::string number(double v) {
  char text[64];
  std::snprintf(text, sizeof text, "%.9g", v);
  return text;
}

double parse_number(std::string_view where, const std::string& key, const std::string& value) {
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(value.c_str(), &end);
  SG_CHECK(!value.empty() && end == value.c_str() + value.size() && errno == 0, where, ": ", key, "='", value,
           "' is not a number");
  return v;
}

int64_t parse_integer(std::string_view where, const std::string& key, const std::string& value) {
  const double v = parse_number(where, key, value);
  SG_CHECK(v == double(int64_t(v)), where, ": ", key, "='", value, "' is not an integer");
  return int64_t(v);
}

std::array<float, 3> parse_triple(std::string_view where, const std::string& key, const std::string& value) {
  std::array<float, 3> out{};
  std::stringstream in(value);
  std::string item;
  size_t n = 0;
  while (std::getline(in, item, ',')) {
    SG_CHECK(n < 3, where, ": ", key, "='", value, "' should hold 3 comma-separated numbers");
    out[n++] = float(parse_number(where, key, item));
  }
  SG_CHECK(n == 3, where, ": ", key, "='", value, "' should hold 3 comma-separated numbers");
  return out;
}

}  // namespace

std::string_view padding_name(Padding padding) { return word_of(kPaddingWords, padding); }

Padding parse_padding(std::string_view name) { return parse_word(kPaddingWords, name); }

std::string config_text(const EfficientNetConfig& c) {
  std::string s;
  const auto add = [&s](const char* key, const std::string& value) {
    // Appended piece by piece: GCC 12's -Wrestrict misfires on the const char* + std::string chain.
    if (!s.empty()) s += ' ';
    s += key;
    s += '=';
    s += value;
  };
  const auto triple = [](const std::array<float, 3>& v) {
    return number(v[0]) + "," + number(v[1]) + "," + number(v[2]);
  };
  add("arch", c.arch);
  add("width", number(c.width));
  add("depth", number(c.depth));
  add("resolution", std::to_string(c.resolution));
  add("lite", c.lite ? "1" : "0");
  add("activation", std::string(activation_name(c.activation)));
  add("padding", std::string(padding_name(c.padding)));
  add("bn_eps", number(c.bn_eps));
  add("bn_momentum", number(c.bn_momentum));
  add("outputs", std::to_string(c.outputs));
  add("pooling", std::string(head_pooling_name(c.pooling)));
  add("dropout", number(c.dropout));
  add("drop_connect", number(c.drop_connect));
  add("mean", triple(c.mean));
  add("std", triple(c.std));
  return s;
}

EfficientNetConfig parse_config_text(std::string_view text, std::string_view where) {
  std::map<std::string, std::string> pairs;
  std::stringstream in{std::string(text)};
  std::string token;
  while (in >> token) {
    const size_t eq = token.find('=');
    SG_CHECK(eq != std::string::npos && eq > 0, where, ": '", token, "' is not key=value in '", text, "'");
    const std::string key = token.substr(0, eq);
    SG_CHECK(pairs.emplace(key, token.substr(eq + 1)).second, where, ": key '", key, "' appears twice");
  }
  SG_CHECK(pairs.count("arch"), where, ": no arch= in '", text, "'");
  EfficientNetConfig c = efficientnet_config(pairs["arch"]);
  for (const auto& [key, value] : pairs) {
    if (key == "arch") continue;
    else if (key == "width") c.width = parse_number(where, key, value);
    else if (key == "depth") c.depth = parse_number(where, key, value);
    else if (key == "resolution") c.resolution = parse_integer(where, key, value);
    else if (key == "lite") c.lite = parse_integer(where, key, value) != 0;
    else if (key == "activation") c.activation = parse_activation(value);
    else if (key == "padding") c.padding = parse_padding(value);
    else if (key == "bn_eps") c.bn_eps = parse_number(where, key, value);
    else if (key == "bn_momentum") c.bn_momentum = parse_number(where, key, value);
    else if (key == "outputs") c.outputs = parse_integer(where, key, value);
    else if (key == "pooling") c.pooling = parse_head_pooling(value);
    else if (key == "dropout") c.dropout = parse_number(where, key, value);
    else if (key == "drop_connect") c.drop_connect = parse_number(where, key, value);
    else if (key == "mean") c.mean = parse_triple(where, key, value);
    else if (key == "std") c.std = parse_triple(where, key, value);
    else throw Error(detail::concat(where, ": unknown key '", key, "' in '", text, "'"));
  }
  SG_CHECK(c.outputs >= 1, where, ": outputs=", c.outputs, " must be at least 1");
  SG_CHECK(c.width > 0 && c.depth > 0, where, ": width and depth must be positive");
  return c;
}

}  // namespace sg::nn
