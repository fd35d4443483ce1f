#pragma once
// A look at a TIFF's directories with libtiff before OpenSlide opens it.
//
// OpenSlide 3.4.1 trusts the sizes a TIFF declares: its own directory reader allocates each
// entry's values (count x type size) before checking them against the file, it reads a JPEG
// tile's bytes into a buffer of the tile's declared byte count, and it decodes whole tiles of the
// declared width x height, all through g_malloc, which aborts the process when it fails. Our fuzzing (fuzz/README.md,
// fuzz_slide_reader) found TIFFs of a few kilobytes that make it ask for 2.6-9.8 GB while opening
// or reading them. One damaged slide must not end a training run, so Slide refuses such a file
// first, with an sg::Error the loader reports and skips.
#include <string>

namespace sg::data {

// The largest tile we let OpenSlide decode: 4096 x 4096 pixels (64 MiB of RGBA). Scanners write
// 240 to 1024 px tiles; PANDA's files use 512.
inline constexpr long long kMaxTilePixels = 4096LL * 4096LL;

// Throws sg::Error naming the path and the directory when a TIFF directory entry declares more
// values than the file holds or values past its end, when the directories form a loop, or when a
// directory declares tiles of zero size or above kMaxTilePixels or a tile whose bytes lie past the
// end of the file. Files that do not start like a TIFF are left to OpenSlide
// (which reads other formats), as are TIFFs libtiff cannot open (OpenSlide then says why).
void check_tiff_tiles(const std::string& path);

}  // namespace sg::data
