# The emulated CUDA device (-DSLIDEGRADE_EMULATED_CUDA=ON): the .cu sources compiled as host C++
# against tests/emulated_cuda/include, run on the CPU with bounds, alignment, race and
# uninitialised-shared-memory checks. See tests/emulated_cuda/README.md.
#
# Defines:
#   sg_emulated_cuda              the emulated runtime (CUDA runtime API, executor, inline PTX, cuBLAS)
#   sg_emulated_kernel_flags()    the compile flags of every translation unit holding device code
#   sg_translate_cuda(OUT FILES)  translated copies of .cu/.cuh files (OUT: the .cu ones, to compile)
#   SG_EMULATED_CUDA_MIRROR       the folder of translated copies (first on the kernels' include path)

if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "SLIDEGRADE_EMULATED_CUDA needs clang (its load/store tracing checks shared memory): "
                      "-DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang")
endif()
if(NOT CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  message(FATAL_ERROR "SLIDEGRADE_EMULATED_CUDA switches fibers with x86-64 code (tests/emulated_cuda/executor.cpp)")
endif()
find_package(Python3 REQUIRED COMPONENTS Interpreter)
# The sanitizers keep clang from vectorising the CPU kernels' OpenMP simd loops: one warning per loop.
add_compile_options(-Wno-pass-failed)

set(SG_EMULATED_CUDA_DIR ${PROJECT_SOURCE_DIR}/tests/emulated_cuda)
set(SG_EMULATED_CUDA_MIRROR ${PROJECT_BINARY_DIR}/emulated_cuda_sources)

add_library(sg_emulated_cuda STATIC
  ${SG_EMULATED_CUDA_DIR}/machine.cpp
  ${SG_EMULATED_CUDA_DIR}/executor.cpp
  ${SG_EMULATED_CUDA_DIR}/inline_ptx.cpp
  ${SG_EMULATED_CUDA_DIR}/emulated_cublas.cpp
  ${SG_EMULATED_CUDA_DIR}/ptx_fragments.cpp)
target_include_directories(sg_emulated_cuda PUBLIC ${SG_EMULATED_CUDA_DIR}/include ${PROJECT_SOURCE_DIR})
target_link_libraries(sg_emulated_cuda PUBLIC Threads::Threads ${CMAKE_DL_LIBS})
target_compile_definitions(sg_emulated_cuda PUBLIC SLIDEGRADE_EMULATED_CUDA=1)
# Its code runs on the fibers too: no AddressSanitizer fake stacks (one per fiber would be mapped).
if(SLIDEGRADE_SANITIZE MATCHES "address")
  target_compile_options(sg_emulated_cuda PRIVATE -fsanitize-address-use-after-return=never)
endif()

# Device code: every load and store calls the emulator's hooks (clang's SanitizerCoverage
# trace-loads/trace-stores; inline 8-bit counters are the cheapest coverage kind it needs beside
# them), and locals stay on the fiber's own stack (no AddressSanitizer fake stack), so the hooks can
# tell a kernel's locals from host memory.
function(sg_emulated_kernel_flags target)
  target_compile_options(${target} PRIVATE -fsanitize-coverage=inline-8bit-counters,trace-loads,trace-stores)
  if(SLIDEGRADE_SANITIZE MATCHES "address")
    target_compile_options(${target} PRIVATE -fsanitize-address-use-after-return=never)
  endif()
  target_include_directories(${target} BEFORE PRIVATE ${SG_EMULATED_CUDA_MIRROR})
endfunction()

# Translates FILES (absolute paths under the source tree) into the mirror folder: X.cu becomes
# X.cu.cpp, X.cuh keeps its name (found first on the include path).
function(sg_translate_cuda out_var)
  set(compiled)
  foreach(source ${ARGN})
    file(RELATIVE_PATH relative ${PROJECT_SOURCE_DIR} ${source})
    if(source MATCHES "\\.cu$")
      set(output ${SG_EMULATED_CUDA_MIRROR}/${relative}.cpp)
      list(APPEND compiled ${output})
    else()
      set(output ${SG_EMULATED_CUDA_MIRROR}/${relative})
      list(APPEND compiled ${output})  # a header: listed so it is generated before its users compile
    endif()
    add_custom_command(OUTPUT ${output}
      COMMAND ${Python3_EXECUTABLE} ${SG_EMULATED_CUDA_DIR}/translate_cuda.py ${source} ${output}
      DEPENDS ${source} ${SG_EMULATED_CUDA_DIR}/translate_cuda.py
      COMMENT "Translating ${relative} for the emulated CUDA device" VERBATIM)
  endforeach()
  set(${out_var} ${compiled} PARENT_SCOPE)
endfunction()

# Files that branch on __CUDA_ARCH__ are compiled once per emulated card (arch_variants/); a new
# one without variants would silently run a single branch, so it stops the configure.
set(SG_EMULATED_ARCH_VARIANT_FILES ${PROJECT_SOURCE_DIR}/kernels/cuda/conv2d_implicit_gemm.cu)
function(sg_check_arch_variants)
  foreach(source ${ARGN})
    file(READ ${source} text)
    if(text MATCHES "__CUDA_ARCH__" AND NOT source IN_LIST SG_EMULATED_ARCH_VARIANT_FILES)
      message(FATAL_ERROR "${source} branches on __CUDA_ARCH__: give it per-personality variants in "
                          "tests/emulated_cuda/arch_variants/ (as conv2d_implicit_gemm.cu has)")
    endif()
  endforeach()
endfunction()
