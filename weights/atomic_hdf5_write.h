#pragma once
// Writing an HDF5 file so that a killed or failing writer never leaves a torn file: HDF5 builds
// the file in memory (core driver), its image is written to "<path>.tmp-<pid>" with checked
// write/fsync calls, then renamed over `path` (atomic on POSIX within one file system), and the
// folder is fsync'ed so the rename survives a crash. (Writing through HDF5's own file driver, a
// full disk left a half-closed file that HDF5 tried to flush again at exit, and crashed.)
// Until the rename, `path` keeps its previous content (or stays absent). The file gets a 512-byte
// user block holding a whole-file checksum (weights/checksummed_hdf5.h), which every read verifies.
// A writer killed before the rename leaves "<path>.tmp-<pid>" behind (it never shadows `path`);
// the next write to `path` removes such files whose pid is no longer running.
#include <hdf5.h>

#include <filesystem>
#include <functional>

namespace sg::h5 {

// The temporary name a write to `path` by this process uses.
std::filesystem::path temporary_path_for(const std::filesystem::path& path);

// Creates the temporary file, calls fill(file id) to write it, and renames it to `path`. When
// fill throws (or any step fails) the temporary file is removed and the error is rethrown;
// `path` is untouched.
void write_atomically(const std::filesystem::path& path, const std::function<void(hid_t file)>& fill);

}  // namespace sg::h5
