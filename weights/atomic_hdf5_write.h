#pragma once
// Writing an HDF5 file so that a killed or failing writer never leaves a torn file: HDF5 builds
// the file in memory (core driver), and its image is written with core/atomic_file.h (a temporary
// file in the same folder, fsync'ed, renamed over `path`, the folder fsync'ed). (Writing through
// HDF5's own file driver, a full disk left a half-closed file that HDF5 tried to flush again at
// exit, and crashed.) Until the rename, `path` keeps its previous content (or stays absent). The
// file gets a 512-byte user block holding a whole-file checksum (weights/checksummed_hdf5.h),
// which every read verifies. A writer killed while writing the image leaves its temporary behind
// (it never shadows `path`); the next write to `path` removes those whose writer is gone
// (remove_abandoned_temporaries).
#include <hdf5.h>

#include <filesystem>
#include <functional>

namespace sg::h5 {

// Builds the file in memory, calls fill(file id) to write it, and writes it to `path` atomically.
// When fill throws (or any step fails) nothing is left on disk and the error is rethrown; `path`
// is untouched.
void write_atomically(const std::filesystem::path& path, const std::function<void(hid_t file)>& fill);

}  // namespace sg::h5
