// Inputs that the read_npy fuzz target (fuzz/fuzz_npy.cpp) turned up, kept as regression tests so
// the fixes stay tested without clang: a header may claim any shape, and read_npy must refuse it
// with an sg::Error naming the file and the problem, before allocating anything.
#include <gtest/gtest.h>

#include <string>

#include "data/npy.h"

namespace sg {
namespace {

std::string regression_input(const std::string& name) {
  return std::string(SG_TEST_DATA_DIR) + "/fuzz_regressions/" + name;
}

// The message of the sg::Error read_npy throws; a test failure when it throws anything else.
std::string error_of(const std::string& path) {
  try {
    read_npy(path);
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << path << ": " << typeid(e).name() << " instead of sg::Error: " << e.what();
    return "";
  }
  ADD_FAILURE() << path << ": read without an error";
  return "";
}

void expect_refused(const std::string& name, const std::string& expected) {
  const std::string path = regression_input(name);
  const std::string message = error_of(path);
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find(expected), std::string::npos) << message;
}

// 'shape': (99999999999999999999,) made std::stoll throw std::out_of_range.
TEST(NpyFuzzRegressions, DimensionPastInt64) {
  expect_refused("npy_dimension_past_int64.npy", "dimension too large: 99999999999999999999");
}

// 'shape': (4294967296, 4294967296, 16): the element count overflowed int64 (UBSan in Shape::numel).
TEST(NpyFuzzRegressions, ShapeProductOverflows) {
  expect_refused("npy_shape_product_overflows.npy", "more elements than fit in 64 bits");
}

// 'shape': (1000000000000,) of <f4 in a 128-byte file: a 4 TB allocation before the truncation check.
TEST(NpyFuzzRegressions, ShapeLargerThanFile) {
  expect_refused("npy_shape_larger_than_file.npy",
                 "truncated data: expected 4000000000000 bytes for shape [1000000000000] of <f4, the file holds 0");
}

// 'shape': (100000000,) with no data: refused from the file size, without allocating 400 MB first.
TEST(NpyFuzzRegressions, LargeShapeHeaderOnly) {
  expect_refused("npy_400mb_shape_header_only.npy", "expected 400000000 bytes for shape [100000000] of <f4, the file holds 0");
}

}  // namespace
}  // namespace sg
