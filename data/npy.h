#pragma once
// NumPy .npy files (format versions 1.0, 2.0 and 3.0) as tensors: the way `slidegrade forward`
// exchanges inputs and logits with other frameworks. Debian packages no C++ .npy library, and
// the format is one small header, so it is read here.
//
// Reads little-endian, C-order arrays of float32 (<f4), float16 (<f2), float64 (<f8, converted
// to f32), int32 (<i4) and uint8 (|u1); writes float32, float16, int32 and uint8 as version 1.0.
// Every error names the file and what was expected.
#include <string>

#include "core/tensor.h"

namespace sg {

Tensor read_npy(const std::string& path);
void write_npy(const std::string& path, const Tensor& tensor);

}  // namespace sg
