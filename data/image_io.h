#pragma once
// PNG files through OpenCV's imgcodecs: RGB(A) images in memory, BGR(A) in OpenCV, so channels
// are swapped on the way in and out. Errors name the file.
#include <string>

#include "data/image.h"

namespace sg::data {

// Writes a 1 (grey), 3 (RGB) or 4 (RGBA) channel image; throws sg::Error naming the path when
// the image is empty, has another channel count, or the file cannot be written.
void write_png(const std::string& path, const Image& image);

// Reads an 8-bit PNG (or any format imgcodecs reads) as grey (1 channel), RGB (3) or RGBA (4),
// as stored; throws sg::Error naming the path when it is missing, unreadable or not 8-bit.
Image read_png(const std::string& path);

}  // namespace sg::data
