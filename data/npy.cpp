#include "data/npy.h"

#include <charconv>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <regex>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"

namespace sg {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;

struct Descr {
  const char* text;
  DType dtype;  // stored dtype after conversion
  size_t file_item_size;
};

// The dtypes we read; "<f8" is converted to f32 on load.
constexpr Descr kDescrs[] = {
    {"<f4", DType::f32, 4}, {"<f2", DType::f16, 2}, {"<f8", DType::f32, 8},
    {"<i4", DType::i32, 4}, {"|u1", DType::u8, 1},  {"<u1", DType::u8, 1},
};

std::string descr_of(DType dtype) {
  switch (dtype) {
    case DType::f32: return "<f4";
    case DType::f16: return "<f2";
    case DType::i32: return "<i4";
    case DType::u8: return "|u1";
    case DType::bf16: break;
  }
  throw Error("write_npy: bf16 has no NumPy dtype; cast to f32 first");
}

}  // namespace

Tensor read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  SG_CHECK(in, path, ": cannot open");
  char magic[kMagicSize + 2] = {};
  in.read(magic, sizeof magic);
  SG_CHECK(in && std::memcmp(magic, kMagic, kMagicSize) == 0, path, ": not a .npy file (no \\x93NUMPY magic)");
  const int major = static_cast<unsigned char>(magic[6]);
  SG_CHECK(major >= 1 && major <= 3, path, ": unsupported .npy version ", major, ".", int(magic[7]));
  uint32_t header_size = 0;
  unsigned char size_bytes[4] = {};
  in.read(reinterpret_cast<char*>(size_bytes), major == 1 ? 2 : 4);
  SG_CHECK(in, path, ": truncated .npy header");
  header_size = uint32_t(size_bytes[0]) | uint32_t(size_bytes[1]) << 8 | uint32_t(size_bytes[2]) << 16 |
                uint32_t(size_bytes[3]) << 24;
  SG_CHECK(header_size < (1u << 20), path, ": implausible .npy header size ", header_size);
  std::string header(header_size, '\0');
  in.read(header.data(), std::streamsize(header_size));
  SG_CHECK(in, path, ": truncated .npy header");

  std::smatch m;
  SG_CHECK(std::regex_search(header, m, std::regex(R"('descr'\s*:\s*'([^']*)')")), path,
           ": .npy header has no 'descr'");
  const std::string descr = m[1];
  SG_CHECK(std::regex_search(header, m, std::regex(R"('fortran_order'\s*:\s*(True|False))")), path,
           ": .npy header has no 'fortran_order'");
  SG_CHECK(m[1] == "False", path, ": Fortran-order arrays are not supported (save with np.ascontiguousarray)");
  SG_CHECK(std::regex_search(header, m, std::regex(R"('shape'\s*:\s*\(([^)]*)\))")), path,
           ": .npy header has no 'shape'");
  // Dimensions and their product are checked before anything is allocated: a header may claim
  // any shape (a dimension past int64, a product that overflows, more bytes than the file holds).
  std::vector<int64_t> dims;
  const std::string shape_text = m[1];
  const std::regex number(R"(\d+)");
  uint64_t count_in_header = 1;
  for (std::sregex_iterator it(shape_text.begin(), shape_text.end(), number), end; it != end; ++it) {
    const std::string digits = it->str();
    int64_t dim = 0;
    const auto [last, error] = std::from_chars(digits.data(), digits.data() + digits.size(), dim);
    SG_CHECK(error == std::errc{} && last == digits.data() + digits.size(), path, ": .npy shape (", shape_text,
             ") has a dimension too large: ", digits);
    SG_CHECK(!__builtin_mul_overflow(count_in_header, uint64_t(dim), &count_in_header), path, ": .npy shape (",
             shape_text, ") has more elements than fit in 64 bits");
    dims.push_back(dim);
  }

  const Descr* found = nullptr;
  for (const Descr& d : kDescrs)
    if (descr == d.text) found = &d;
  SG_CHECK(found, path, ": dtype '", descr,
           "' is not supported (expected little-endian <f4, <f2, <f8, <i4 or |u1)");

  uint64_t data_bytes = 0;
  SG_CHECK(!__builtin_mul_overflow(count_in_header, uint64_t(found->file_item_size), &data_bytes) &&
               count_in_header <= uint64_t(INT64_MAX),
           path, ": .npy shape (", shape_text, ") of ", descr, " needs more bytes than fit in 64 bits");
  const std::streampos data_start = in.tellg();
  in.seekg(0, std::ios::end);
  const std::streampos file_end = in.tellg();
  in.seekg(data_start);
  SG_CHECK(in && data_start >= 0 && file_end >= data_start, path, ": cannot find the size of the file");
  const uint64_t bytes_left = uint64_t(file_end - data_start);
  const Shape shape(dims);
  SG_CHECK(data_bytes <= bytes_left, path, ": truncated data: expected ", data_bytes, " bytes for shape ",
           shape.str(), " of ", descr, ", the file holds ", bytes_left);

  Tensor t = Tensor::empty(shape, found->dtype);
  const size_t count = size_t(t.numel());
  std::vector<char> raw(count * found->file_item_size);
  in.read(raw.data(), std::streamsize(raw.size()));
  SG_CHECK(in && size_t(in.gcount()) == raw.size(), path, ": truncated data: expected ", raw.size(),
           " bytes for shape ", t.shape().str(), " of ", descr);
  if (descr == "<f8") {
    float* out = t.data_as<float>();
    for (size_t i = 0; i < count; ++i) {
      double v;
      std::memcpy(&v, raw.data() + i * 8, 8);
      out[i] = float(v);
    }
  } else if (count) {
    std::memcpy(t.data(), raw.data(), raw.size());
  }
  return t;
}

void write_npy(const std::string& path, const Tensor& tensor) {
  const Tensor host = tensor.device().is_cpu() ? tensor : tensor.to(Device::cpu());
  // NumPy's own spelling: (), (5,), (2, 3, 4).
  std::string shape = "(";
  for (int i = 0; i < host.rank(); ++i) shape += (i ? ", " : "") + std::to_string(host.dim(i));
  shape += host.rank() == 1 ? ",)" : ")";
  std::string header = "{'descr': '" + descr_of(host.dtype()) + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Pad with spaces so that magic + version + size + header + '\n' is a multiple of 64.
  const size_t unpadded = kMagicSize + 2 + 2 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  SG_CHECK(header.size() < 65536, path, ": .npy header too long for version 1.0");
  // Written atomically (core/atomic_file.h): a kill or a power cut never leaves half an array.
  AtomicFile out(path);
  out.write(kMagic, kMagicSize);
  const char version[2] = {1, 0};
  out.write(version, 2);
  const unsigned char size[2] = {static_cast<unsigned char>(header.size() & 0xff),
                                 static_cast<unsigned char>(header.size() >> 8)};
  out.write(size, 2);
  out.write(header);
  out.write(host.data(), host.nbytes());
  out.commit();
}

}  // namespace sg
