#pragma once
// A whole-file checksum for the HDF5 files slidegrade writes, kept in HDF5's user block, and the
// one way we open HDF5 files for reading: the checksum is verified before HDF5 parses any byte.
//
// Layout: every file we write has a 512-byte HDF5 user block (H5Pset_userblock); HDF5 puts its
// superblock at byte 512 and never reads the user block, so HDF5 tools, h5py and Keras open the
// file as usual. The user block holds our header (integers little-endian):
//   [0, 16)    magic "SLIDEGRADE-H5\0\0\0"
//   [16, 20)   header version (1)
//   [20, 24)   header size (512)
//   [24, 32)   file length in bytes, header included
//   [32, 36)   CRC-32 (zlib's crc32) of bytes [512, file length)
//   [64, ...)  a line of text saying what the header is (for `head -c 512`)
//   [508, 512) CRC-32 of bytes [0, 508): the header checks itself, so every byte of the file is covered
// The rest is zero.
//
// Why CRC-32 from zlib: zlib is already on every machine that has HDF5, and a CRC-32 detects every
// error burst of up to 32 bits for certain (so any single damaged byte, and any run of 4), not just
// with high probability as a non-CRC hash would. It is meant against accidental damage (bit rot,
// torn copies, truncation), not tampering.
//
// Reading (open_verified_hdf5):
//   our magic at byte 0        -> header checksum, version, length (truncated / extended files get
//                                 their own message), then the data checksum; any mismatch refuses
//                                 the file. HDF5 then opens the very bytes that were verified (an
//                                 in-memory image), so the file cannot change between check and parse.
//   HDF5 signature at byte 0   -> no checksum (Keras, h5py, slidegrade before checksums): opened as
//                                 before, from disk.
//   HDF5 signature at byte 512 -> a 512-byte user block without our header: refused as damaged
//     but no magic                (a damaged magic), since slidegrade is what writes such files.
#include <cstdint>
#include <span>
#include <string>

#include "weights/hdf5_file.h"

namespace sg::h5 {

inline constexpr size_t kChecksumHeaderSize = 512;
inline constexpr uint32_t kChecksumHeaderVersion = 1;

struct FileChecksum {
  bool present = false;  // false: the file has no slidegrade header
  uint32_t data_crc32 = 0;  // of bytes [512, length)
  uint64_t length = 0;      // the whole file, header included
};

// Writes the header for image[512, end) into image[0, 512). `image` is a whole file as HDF5 built
// it with a 512-byte user block; `path` only names the file in errors.
void stamp_checksum_header(std::span<char> image, const std::string& path);

// Verifies the file's checksum when it has a header (throwing the messages above) and opens it
// read-only. `checksum`, when given, receives what was verified.
Hdf5Handle open_verified_hdf5(const std::string& path, FileChecksum* checksum = nullptr);

// True when the file starts with our magic (reads 16 bytes; verifies nothing).
bool has_checksum_header(const std::string& path);

// One line for `slidegrade inspect`: "crc32 0x1234abcd over 1234 bytes, verified" or "none (...)".
std::string describe(const FileChecksum& checksum);

}  // namespace sg::h5
