// devices(): the CPU and every CUDA device, as `slidegrade info` lists them.
#include <nanobind/stl/string.h>

#include "core/cuda/device_code.h"
#include "core/device.h"
#include "kernels/cpu/blas_info.h"
#include "python/src/bindings.h"

namespace sg::python {

void bind_devices(nb::module_& m) {
  m.def(
      "devices",
      [] {
        nb::list out;
        nb::dict cpu;
        cpu["name"] = "cpu";
        cpu["kind"] = "cpu";
        cpu["description"] = cpu::gemm_library_description();
        out.append(cpu);
        for (int i = 0; i < cuda_device_count(); ++i) {
          nb::dict gpu;
          gpu["name"] = "cuda:" + std::to_string(i);
          gpu["kind"] = "cuda";
          gpu["description"] = cuda_device_name(i);
          gpu["compute_capability"] = cuda::compute_capability(i);
          const std::string missing = cuda::missing_code_reason(i);
          gpu["usable"] = missing.empty();
          if (!missing.empty()) gpu["why_not"] = missing;
          out.append(gpu);
        }
        return out;
      },
      "The devices this build can run on: a dict per device with name ('cpu', 'cuda:0', ...), kind ('cpu' "
      "or 'cuda'), description (the CPU's GEMM library, or the card's name) and for CUDA devices "
      "compute_capability (61 for sm_61), usable, and why_not when this build holds no code for the card. "
      "A build without CUDA, or a machine without a GPU, lists the CPU alone.");
  m.def(
      "default_device", [] { return default_device().str(); },
      "The device 'auto' selects: 'cuda:0' when there is a usable GPU, else 'cpu'.");
}

}  // namespace sg::python
