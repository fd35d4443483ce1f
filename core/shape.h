#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/error.h"

namespace sg {

// A tensor's extents, outermost first. Activations are NHWC: [N, H, W, C].
class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) : dims_(dims) { validate(); }
  explicit Shape(std::vector<int64_t> dims) : dims_(std::move(dims)) { validate(); }

  int rank() const { return int(dims_.size()); }
  int64_t operator[](int i) const { return dims_.at(size_t(i < 0 ? i + rank() : i)); }
  const std::vector<int64_t>& dims() const { return dims_; }

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : dims_) n *= d;
    return n;
  }

  bool operator==(const Shape&) const = default;

  std::string str() const {
    std::string s = "[";
    for (size_t i = 0; i < dims_.size(); ++i) s += (i ? ", " : "") + std::to_string(dims_[i]);
    return s + "]";
  }

 private:
  void validate() const {
    for (int64_t d : dims_) SG_CHECK(d >= 0, "Shape: negative extent in ", str());
  }
  std::vector<int64_t> dims_;
};

inline std::ostream& operator<<(std::ostream& out, const Shape& s) { return out << s.str(); }

}  // namespace sg
