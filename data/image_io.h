#pragma once
// PNG files through libspng (Debian's libspng0; it needs only zlib). Images are 8-bit grey (1
// channel), RGB (3) or RGBA (4) in memory, the same channel order as in the file. Errors name the
// file. (OpenCV's imgcodecs did this before; it loaded GDAL and ~140 other libraries with it.)
#include <string>

#include "data/image.h"

namespace sg::data {

// Writes a 1 (grey), 3 (RGB) or 4 (RGBA) channel image as an 8-bit PNG (fast zlib level, as
// OpenCV wrote them). The file is encoded in memory and written atomically (core/atomic_file.h):
// a reader, a kill or a power cut never sees half a file, and a failed write leaves `path` as it
// was. Throws sg::Error
// naming the path when the image is empty, has another channel count, or the file cannot be
// written.
void write_png(const std::string& path, const Image& image);

// Reads a PNG into 1, 3 or 4 channels, as OpenCV's imread(IMREAD_UNCHANGED) did:
//   grey (1, 2, 4 or 8 bits)           -> 1 channel, low depths scaled to 0..255; a tRNS colour
//                                         key is ignored
//   grey + alpha                       -> 4 channels, RGBA with R = G = B = grey
//   RGB                                -> 3 channels; 4 (RGBA) when a tRNS chunk names a
//                                         transparent colour (alpha 0 there, 255 elsewhere)
//   palette (1, 2, 4 or 8 bits)        -> 3 channels, RGB from the palette; 4 (RGBA) with tRNS;
//                                         an index past the palette reads as black, as in libpng
//   RGBA                               -> 4 channels
// Interlaced files are read too. Gamma, colour profiles and other ancillary chunks are ignored
// (the samples are returned as stored). 16-bit PNGs are refused, not narrowed: nothing here
// writes them, and a silent loss of precision would be worse than a clear error.
// Throws sg::Error naming the path when the file is missing, unreadable, not a PNG, corrupt or
// truncated (CRC, zlib and missing-IEND errors included), 16-bit, or over 2^30 pixels.
Image read_png(const std::string& path);

}  // namespace sg::data
