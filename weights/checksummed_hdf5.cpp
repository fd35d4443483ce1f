#include "weights/checksummed_hdf5.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace sg::h5 {
namespace {

constexpr char kMagic[16] = {'S', 'L', 'I', 'D', 'E', 'G', 'R', 'A', 'D', 'E', '-', 'H', '5', 0, 0, 0};
constexpr unsigned char kHdf5Signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
constexpr size_t kVersionAt = 16, kSizeAt = 20, kLengthAt = 24, kDataCrcAt = 32, kNoteAt = 64;
constexpr size_t kHeaderCrcAt = kChecksumHeaderSize - 4;
constexpr const char* kNote =
    "slidegrade checksum header: HDF5 data starts at byte 512; CRC-32 of the data at byte 32 "
    "(see weights/checksummed_hdf5.h)\n";
#define SG_RECOVERY "use the previous checkpoint or download it again"
constexpr const char* kRecovery = SG_RECOVERY;
constexpr const char* kAdvice = "the file was changed or damaged after it was written; " SG_RECOVERY;
#undef SG_RECOVERY

uint32_t crc32_of(const char* data, size_t size) {
  return uint32_t(::crc32_z(::crc32_z(0, Z_NULL, 0), reinterpret_cast<const Bytef*>(data), size));
}

void put_le(char* at, uint64_t value, size_t bytes) {
  for (size_t i = 0; i < bytes; ++i) at[i] = char((value >> (8 * i)) & 0xff);
}

uint64_t get_le(const char* at, size_t bytes) {
  uint64_t value = 0;
  for (size_t i = 0; i < bytes; ++i) value |= uint64_t(static_cast<unsigned char>(at[i])) << (8 * i);
  return value;
}

std::string hex(uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", value);
  return text;
}

bool has_hdf5_signature(const char* at) { return std::memcmp(at, kHdf5Signature, sizeof kHdf5Signature) == 0; }

// A read-only descriptor, closed at scope exit.
class ReadFd {
 public:
  explicit ReadFd(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {}
  ~ReadFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  ReadFd(const ReadFd&) = delete;
  ReadFd& operator=(const ReadFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Reads up to `size` bytes at `offset`; returns how many were read (fewer only at the end of the file).
size_t read_at(int fd, char* into, size_t size, uint64_t offset, const std::string& path) {
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd, into + done, size - done, off_t(offset + done));
    if (n == 0) break;
    if (n < 0) {
      SG_CHECK(errno == EINTR, path, ": reading failed: ", std::strerror(errno));
      continue;
    }
    done += size_t(n);
  }
  return done;
}

// Checks the header in `header` (the file's first 512 bytes) against a file of `file_size` bytes;
// returns the stored length and data checksum.
FileChecksum check_header(const char* header, uint64_t file_size, const std::string& path) {
  const uint32_t stored_header_crc = uint32_t(get_le(header + kHeaderCrcAt, 4));
  const uint32_t header_crc = crc32_of(header, kHeaderCrcAt);
  SG_CHECK(stored_header_crc == header_crc, path, ": checksum mismatch in its slidegrade header (bytes 0-511: stored crc32 ",
           hex(stored_header_crc), ", computed ", hex(header_crc), "): ", kAdvice);
  const uint32_t version = uint32_t(get_le(header + kVersionAt, 4));
  SG_CHECK(version == kChecksumHeaderVersion && get_le(header + kSizeAt, 4) == kChecksumHeaderSize, path,
           ": checksum header version ", version, " was written by a newer slidegrade (this build reads version ",
           kChecksumHeaderVersion, ")");
  FileChecksum checksum;
  checksum.present = true;
  checksum.length = get_le(header + kLengthAt, 8);
  checksum.data_crc32 = uint32_t(get_le(header + kDataCrcAt, 4));
  SG_CHECK(file_size >= checksum.length, path, ": truncated: ", file_size, " bytes on disk, but ", checksum.length,
           " were written (an interrupted write, copy or download?); ", kRecovery);
  SG_CHECK(file_size == checksum.length, path, ": ", file_size, " bytes on disk, but ", checksum.length,
           " were written (bytes were appended); ", kAdvice);
  return checksum;
}

// Opens a verified image in memory: HDF5's core driver parses exactly these bytes.
Hdf5Handle open_image(std::vector<char>& image, const std::string& path) {
  Hdf5Handle access(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  SG_CHECK(access.valid() && H5Pset_fapl_core(access.get(), size_t(1) << 20, 0) >= 0 &&
               H5Pset_file_image(access.get(), image.data(), image.size()) >= 0,
           path, ": cannot set up an in-memory HDF5 file of ", image.size(), " bytes");
  // The property list holds its own copy: release ours now so the peak stays near two images.
  std::vector<char>().swap(image);
  // With an image, the core driver wants a name that is not an existing file, and HDF5 takes two
  // opens of one name for the same file (it would hand back the first image): one name per open.
  static std::atomic<uint64_t> opens{0};
  const std::string label = detail::concat("slidegrade-verified-image-", ++opens, ":", path);
  Hdf5Handle file(H5Fopen(label.c_str(), H5F_ACC_RDONLY, access.get()), H5Fclose);
  SG_CHECK(file.valid(), path, ": HDF5 cannot open the file although its checksum is right "
           "(written by a newer HDF5?)");
  return file;
}

}  // namespace

void stamp_checksum_header(std::span<char> image, const std::string& path) {
  SG_CHECK(image.size() >= kChecksumHeaderSize + sizeof kHdf5Signature && has_hdf5_signature(image.data() + kChecksumHeaderSize), path,
           ": the HDF5 image has no superblock at byte ", kChecksumHeaderSize, " (user block not set?)");
  char* header = image.data();
  std::memset(header, 0, kChecksumHeaderSize);
  std::memcpy(header, kMagic, sizeof kMagic);
  put_le(header + kVersionAt, kChecksumHeaderVersion, 4);
  put_le(header + kSizeAt, kChecksumHeaderSize, 4);
  put_le(header + kLengthAt, image.size(), 8);
  put_le(header + kDataCrcAt, crc32_of(image.data() + kChecksumHeaderSize, image.size() - kChecksumHeaderSize), 4);
  std::memcpy(header + kNoteAt, kNote, std::strlen(kNote));
  put_le(header + kHeaderCrcAt, crc32_of(header, kHeaderCrcAt), 4);
}

bool has_checksum_header(const std::string& path) {
  const ReadFd fd(path);
  char magic[sizeof kMagic];
  return fd.get() >= 0 && read_at(fd.get(), magic, sizeof magic, 0, path) == sizeof magic &&
         std::memcmp(magic, kMagic, sizeof kMagic) == 0;
}

Hdf5Handle open_verified_hdf5(const std::string& path, FileChecksum* checksum) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // we report our own messages
  const ReadFd fd(path);
  SG_CHECK(fd.get() >= 0, path, errno == ENOENT ? ": no such file" : ": cannot open it: ",
           errno == ENOENT ? "" : std::strerror(errno));
  struct stat info {};
  SG_CHECK(::fstat(fd.get(), &info) == 0, path, ": cannot stat it: ", std::strerror(errno));
  SG_CHECK(S_ISREG(info.st_mode), path, ": not a regular file");
  const uint64_t size = uint64_t(info.st_size);

  std::array<char, kChecksumHeaderSize + sizeof kHdf5Signature> start{};
  const size_t got = read_at(fd.get(), start.data(), start.size(), 0, path);
  const bool ours = got >= sizeof kMagic && std::memcmp(start.data(), kMagic, sizeof kMagic) == 0;
  if (!ours) {
    if (got >= sizeof kHdf5Signature && has_hdf5_signature(start.data())) {
      // No header: a Keras, h5py or older slidegrade file; HDF5 reads it from disk as before.
      if (checksum) *checksum = {};
      Hdf5Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
      SG_CHECK(file.valid(), path, ": HDF5 cannot open the file: it is truncated or damaged");
      return file;
    }
    SG_CHECK(!(got == start.size() && has_hdf5_signature(start.data() + kChecksumHeaderSize)), path,
             ": damaged: an HDF5 file with a 512-byte user block but no slidegrade checksum header (bytes 0-15 "
             "are not the magic \"SLIDEGRADE-H5\"): ",
             kAdvice);
    throw Error(detail::concat(path, ": not an HDF5 file (no HDF5 signature; empty or truncated?)"));
  }
  SG_CHECK(got >= kChecksumHeaderSize, path, ": truncated: ", size, " bytes, shorter than its ", kChecksumHeaderSize,
           "-byte checksum header; ", kRecovery);
  const FileChecksum stored = check_header(start.data(), size, path);

  std::vector<char> image(size);
  SG_CHECK(read_at(fd.get(), image.data(), image.size(), 0, path) == image.size(), path,
           ": the file got shorter while it was read (", size, " bytes before)");
  const uint32_t computed = crc32_of(image.data() + kChecksumHeaderSize, image.size() - kChecksumHeaderSize);
  SG_CHECK(computed == stored.data_crc32, path, ": checksum mismatch (stored crc32 ", hex(stored.data_crc32),
           ", computed ", hex(computed), " over bytes 512-", size - 1, "): ", kAdvice);
  SG_CHECK(std::memcmp(image.data(), start.data(), kChecksumHeaderSize) == 0, path,
           ": the header changed while the file was read (rewritten in place?)");
  if (checksum) *checksum = stored;
  return open_image(image, path);
}

std::string describe(const FileChecksum& checksum) {
  if (!checksum.present) return "none (no slidegrade header: written by Keras, h5py or slidegrade before checksums)";
  return detail::concat("crc32 ", hex(checksum.data_crc32), " of bytes 512-", checksum.length - 1, ", verified");
}

}  // namespace sg::h5
