// .npy files: arrays written by NumPy read back exactly, our files round-trip, and every
// malformed or unsupported file gives an error naming the file and the problem.
#include <gtest/gtest.h>

#include <filesystem>

#include "data/npy.h"
#include "tests/support/testing.h"

namespace sg {
namespace {

std::string fixture(const std::string& name) { return std::string(SG_TEST_DATA_DIR) + "/npy/" + name; }

std::string error_of(const std::string& path) {
  try {
    read_npy(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Npy, ReadsNumPyFiles) {
  // np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7
  const Tensor a = read_npy(fixture("f32_2x3x4.npy"));
  EXPECT_EQ(a.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(a.dtype(), DType::f32);
  for (int i = 0; i < 24; ++i) EXPECT_EQ(a.data_as<float>()[i], float(i) / 7.0f) << i;

  const Tensor h = read_npy(fixture("f16_5.npy"));
  EXPECT_EQ(h.dtype(), DType::f16);
  EXPECT_EQ(h.to_floats(), (std::vector<float>{0.5f, -1.25f, 65504.0f, to_acc(from_acc<Half>(1e-7f)), 3.0f}));

  const Tensor i = read_npy(fixture("i32_2x2.npy"));
  EXPECT_EQ(i.dtype(), DType::i32);
  EXPECT_EQ(i.data_as<int32_t>()[3], 2147483647);
  EXPECT_EQ(i.data_as<int32_t>()[1], -2);

  const Tensor u = read_npy(fixture("u8_4.npy"));
  EXPECT_EQ(u.dtype(), DType::u8);
  EXPECT_EQ(u.data_as<uint8_t>()[3], 255);

  const Tensor d = read_npy(fixture("f64_3.npy"));  // float64 is converted to f32
  EXPECT_EQ(d.dtype(), DType::f32);
  EXPECT_EQ(d.to_floats(), (std::vector<float>{1, 2, 3}));

  const Tensor s = read_npy(fixture("scalar_f32.npy"));
  EXPECT_EQ(s.rank(), 0);
  EXPECT_EQ(s.data_as<float>()[0], 2.5f);
}

TEST(Npy, RoundTripsOurFiles) {
  testing::Rng rng;
  const auto dir = std::filesystem::temp_directory_path() / ("sg_npy_" + std::to_string(rng.seed()));
  std::filesystem::create_directories(dir);
  for (DType dtype : {DType::f32, DType::f16, DType::i32, DType::u8})
    for (const Shape& shape : {Shape{}, Shape{5}, Shape{3, 1, 7, 2}}) {
      const Tensor t = testing::random_tensor(rng, shape, dtype, 0, 100);
      const std::string path = (dir / "t.npy").string();
      write_npy(path, t);
      const Tensor back = read_npy(path);
      EXPECT_EQ(back.shape(), t.shape());
      EXPECT_EQ(back.dtype(), t.dtype());
      EXPECT_EQ(std::memcmp(back.data(), t.data(), t.nbytes()), 0);
      // NumPy requires the header to end on a 64-byte boundary.
      EXPECT_EQ((std::filesystem::file_size(path) - t.nbytes()) % 64, 0u);
    }
  std::filesystem::remove_all(dir);
  EXPECT_THROW(write_npy((dir / "x.npy").string(), Tensor::zeros({2}, DType::bf16)), Error);
}

TEST(Npy, RejectsBadFilesNamingThem) {
  EXPECT_NE(error_of(fixture("missing.npy")).find("missing.npy: cannot open"), std::string::npos);
  EXPECT_NE(error_of(fixture("not_npy.npy")).find("not a .npy file"), std::string::npos);
  EXPECT_NE(error_of(fixture("truncated_f32.npy")).find("truncated data: expected 96 bytes for shape [2, 3, 4]"),
            std::string::npos)
      << error_of(fixture("truncated_f32.npy"));
  EXPECT_NE(error_of(fixture("fortran_f32.npy")).find("Fortran-order"), std::string::npos);
  EXPECT_NE(error_of(fixture("bigendian_f32.npy")).find("dtype '>f4' is not supported"), std::string::npos);
}

}  // namespace
}  // namespace sg
