// Inline PTX on the emulated device: the asm statements of the kernels (turned into ptx_asm calls
// by translate_cuda.py) are parsed once per text and executed per device thread. mma.sync and
// ldmatrix are warp collectives computed by ptx_fragments.cpp; cp.async copies are queued per
// thread and land in shared memory only at the cp.async.wait_group that covers them.
#include <cuda_runtime.h>

#include <cctype>
#include <cstring>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/emulated_cuda/executor.h"
#include "tests/emulated_cuda/machine.h"
#include "tests/emulated_cuda/ptx_fragments.h"

namespace sg_emu {
namespace {

// An operand of the instruction text: registers {%a, %b}, an address [%n], a register %n or a
// literal.
struct TextOperand {
  enum class Kind { registers, address, reg, literal } kind = Kind::literal;
  std::vector<int> indices;
  long long literal = 0;
};

enum class Op { mma_m16n8k16, mma_m16n8k8, ldmatrix, cp_async, cp_async_commit, cp_async_wait, unsupported };

struct Instruction {
  Op op = Op::unsupported;
  std::string text;
  ptx::MmaInput mma_input = ptx::MmaInput::f16;
  int ldmatrix_count = 0;
  bool transpose = false;
  int copy_bytes = 0;
  std::vector<TextOperand> operands;
};

[[noreturn]] void ptx_fault(const std::string& text, const std::string& what, const char* file, int line) {
  fault("inline PTX at " + std::string(file) + ":" + std::to_string(line) + " (" + describe_current_thread() + "): " +
        what + "\n  " + text);
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && (std::isspace(static_cast<unsigned char>(s[b])) || s[b] == ';')) ++b;
  while (e > b && (std::isspace(static_cast<unsigned char>(s[e - 1])) || s[e - 1] == ';')) --e;
  return s.substr(b, e - b);
}

TextOperand parse_operand(const std::string& raw, const std::string& text, const char* file, int line) {
  const std::string s = trim(raw);
  TextOperand o;
  const auto reg_index = [&](std::string r) {
    r = trim(r);
    if (r.size() < 2 || r[0] != '%') ptx_fault(text, "operand '" + r + "' is not %N", file, line);
    return std::stoi(r.substr(1));
  };
  if (s.empty()) ptx_fault(text, "an empty operand", file, line);
  if (s.front() == '{') {
    o.kind = TextOperand::Kind::registers;
    std::stringstream in(s.substr(1, s.size() - 2));
    std::string part;
    while (std::getline(in, part, ',')) o.indices.push_back(reg_index(part));
  } else if (s.front() == '[') {
    o.kind = TextOperand::Kind::address;
    o.indices.push_back(reg_index(s.substr(1, s.size() - 2)));
  } else if (s.front() == '%') {
    o.kind = TextOperand::Kind::reg;
    o.indices.push_back(reg_index(s));
  } else {
    o.literal = std::stoll(s);
  }
  return o;
}

Instruction parse(const char* ptx_text, const char* file, int line) {
  Instruction ins;
  ins.text = trim(ptx_text);
  const std::string& t = ins.text;
  const size_t space = t.find_first_of(" \t");
  const std::string mnemonic = t.substr(0, space);
  const std::string rest = space == std::string::npos ? "" : t.substr(space + 1);
  // Operands: split at commas outside braces and brackets.
  int depth = 0;
  std::string current;
  for (char c : rest) {
    if (c == '{' || c == '[') ++depth;
    if (c == '}' || c == ']') --depth;
    if (c == ',' && depth == 0) {
      ins.operands.push_back(parse_operand(current, t, file, line));
      current.clear();
    } else {
      current += c;
    }
  }
  if (!trim(current).empty()) ins.operands.push_back(parse_operand(current, t, file, line));

  const auto is = [&](const char* m) { return mnemonic == m; };
  if (is("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32") || is("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32")) {
    ins.op = Op::mma_m16n8k16;
    ins.mma_input = mnemonic.find("bf16") != std::string::npos ? ptx::MmaInput::bf16 : ptx::MmaInput::f16;
  } else if (is("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32") ||
             is("mma.sync.aligned.m16n8k8.row.col.f32.bf16.bf16.f32")) {
    ins.op = Op::mma_m16n8k8;
    ins.mma_input = mnemonic.find("bf16") != std::string::npos ? ptx::MmaInput::bf16 : ptx::MmaInput::f16;
  } else if (mnemonic.rfind("ldmatrix.sync.aligned.m8n8.x", 0) == 0) {
    ins.op = Op::ldmatrix;
    ins.ldmatrix_count = mnemonic[28] - '0';
    ins.transpose = mnemonic.find(".trans") != std::string::npos;
    if (mnemonic.find(".shared.b16") == std::string::npos || mnemonic.find(".shared::cluster") != std::string::npos)
      ins.op = Op::unsupported;
  } else if (is("cp.async.ca.shared.global") || is("cp.async.cg.shared.global")) {
    ins.op = Op::cp_async;
  } else if (is("cp.async.commit_group")) {
    ins.op = Op::cp_async_commit;
  } else if (is("cp.async.wait_group") || is("cp.async.wait_all")) {
    ins.op = Op::cp_async_wait;
  }
  if (ins.op == Op::unsupported) ptx_fault(t, "an instruction the emulated device does not implement", file, line);
  return ins;
}

const Instruction& instruction_for(const char* ptx_text, const char* file, int line) {
  static std::mutex mutex;
  static std::map<const char*, Instruction> cache;  // keyed by the literal's address: one parse per asm statement
  std::lock_guard lock(mutex);
  auto it = cache.find(ptx_text);
  if (it == cache.end()) it = cache.emplace(ptx_text, parse(ptx_text, file, line)).first;
  return it->second;
}

struct Operands {
  std::vector<PtxOperand> all;  // outputs, then inputs: GCC's numbering
  const Instruction* ins;
  const char* file;
  int line;

  const PtxOperand& at(int index) const {
    if (index < 0 || size_t(index) >= all.size())
      ptx_fault(ins->text, "operand %" + std::to_string(index) + " does not exist", file, line);
    return all[size_t(index)];
  }
  uint32_t u32(int index) const { return uint32_t(at(index).value); }
  float f32(int index) const {
    const uint32_t bits = u32(index);
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  void write(int index, const void* bits, size_t bytes) const {
    const PtxOperand& o = at(index);
    if (!o.output || o.size != bytes)
      ptx_fault(ins->text, "operand %" + std::to_string(index) + " is not an output of " + std::to_string(bytes) +
                               " bytes",
                file, line);
    std::memcpy(o.lvalue, bits, bytes);
  }
  const TextOperand& text_operand(size_t i, TextOperand::Kind kind, size_t registers) const {
    if (i >= ins->operands.size() || ins->operands[i].kind != kind ||
        (kind == TextOperand::Kind::registers && ins->operands[i].indices.size() != registers))
      ptx_fault(ins->text, "operand " + std::to_string(i + 1) + " does not have the form the instruction needs", file,
                line);
    return ins->operands[i];
  }
};

// ---- mma.sync ------------------------------------------------------------------------------------------
struct MmaPost {
  uint32_t a[4], b[2];
  float c[4], d[4];
  ptx::MmaInput input;
  bool k16;
};
void resolve_mma(WarpPost* const (&lanes)[32], unsigned) {
  static uint32_t a16[32][4], b16[32][2], a8[32][2], b8[32][1];
  static float c[32][4], d[32][4];
  const auto& first = *static_cast<MmaPost*>(lanes[0]->data);
  for (int l = 0; l < 32; ++l) {
    const auto& p = *static_cast<MmaPost*>(lanes[l]->data);
    for (int i = 0; i < 4; ++i) a16[l][i] = p.a[i], c[l][i] = p.c[i];
    for (int i = 0; i < 2; ++i) b16[l][i] = p.b[i], a8[l][i] = p.a[i];
    b8[l][0] = p.b[0];
  }
  if (first.k16)
    ptx::mma_m16n8k16(first.input, a16, b16, c, d);
  else
    ptx::mma_m16n8k8(first.input, a8, b8, c, d);
  for (int l = 0; l < 32; ++l) std::memcpy(static_cast<MmaPost*>(lanes[l]->data)->d, d[l], sizeof d[l]);
}

void execute_mma(const Operands& o, bool k16) {
  const Instruction& ins = *o.ins;
  const TextOperand& d = o.text_operand(0, TextOperand::Kind::registers, 4);
  const TextOperand& a = o.text_operand(1, TextOperand::Kind::registers, k16 ? 4 : 2);
  const TextOperand& b = o.text_operand(2, TextOperand::Kind::registers, k16 ? 2 : 1);
  const TextOperand& c = o.text_operand(3, TextOperand::Kind::registers, 4);
  MmaPost post{};
  post.input = ins.mma_input;
  post.k16 = k16;
  for (size_t i = 0; i < a.indices.size(); ++i) post.a[i] = o.u32(a.indices[i]);
  for (size_t i = 0; i < b.indices.size(); ++i) post.b[i] = o.u32(b.indices[i]);
  for (int i = 0; i < 4; ++i) post.c[i] = o.f32(c.indices[size_t(i)]);
  // Every lane of the warp takes part: mma.sync.aligned needs the full warp.
  WarpPost wp{0xffffffffu, 100 + int(k16), o.file, o.line, &post, &resolve_mma};
  warp_collective(wp);
  for (int i = 0; i < 4; ++i) o.write(d.indices[size_t(i)], &post.d[i], 4);
}

// ---- ldmatrix ---------------------------------------------------------------------------------------------
struct LdmatrixPost {
  const uint16_t* row;
  int thread;
  int count;
  bool transpose;
  uint32_t out[4];
};
void resolve_ldmatrix(WarpPost* const (&lanes)[32], unsigned) {
  const auto& first = *static_cast<LdmatrixPost*>(lanes[0]->data);
  const uint16_t* rows[32] = {};
  for (int l = 0; l < 32; ++l) {
    const auto& p = *static_cast<LdmatrixPost*>(lanes[l]->data);
    if (l < 8 * first.count) {
      // Lane l reads its row: a shared-memory read by that thread, checked like any other.
      shared_access_by(p.thread, p.row, 16, false);
      rows[l] = p.row;
    } else {
      rows[l] = first.row;  // not read
    }
  }
  uint32_t out[32][4] = {};
  ptx::ldmatrix(first.count, first.transpose, rows, out);
  for (int l = 0; l < 32; ++l) std::memcpy(static_cast<LdmatrixPost*>(lanes[l]->data)->out, out[l], sizeof out[l]);
}

void execute_ldmatrix(const Operands& o) {
  const Instruction& ins = *o.ins;
  const TextOperand& d = o.text_operand(0, TextOperand::Kind::registers, size_t(ins.ldmatrix_count));
  const TextOperand& address = o.text_operand(1, TextOperand::Kind::address, 1);
  LdmatrixPost post{};
  post.row = reinterpret_cast<const uint16_t*>(shared_begin() + uintptr_t(o.u32(address.indices[0])));
  post.thread = current_linear_thread();
  post.count = ins.ldmatrix_count;
  post.transpose = ins.transpose;
  if ((reinterpret_cast<uintptr_t>(post.row) & 15u) != 0)
    ptx_fault(ins.text, "a row address that is not 16-byte aligned", o.file, o.line);
  WarpPost wp{0xffffffffu, 200 + ins.ldmatrix_count * 2 + int(ins.transpose), o.file, o.line, &post, &resolve_ldmatrix};
  warp_collective(wp);
  for (size_t i = 0; i < d.indices.size(); ++i) o.write(d.indices[i], &post.out[i], 4);
}

// ---- cp.async -----------------------------------------------------------------------------------------------
void execute_cp_async(const Operands& o) {
  const Instruction& ins = *o.ins;
  const TextOperand& dst = o.text_operand(0, TextOperand::Kind::address, 1);
  const TextOperand& src = o.text_operand(1, TextOperand::Kind::address, 1);
  if (ins.operands.size() < 3 || ins.operands[2].kind != TextOperand::Kind::literal)
    ptx_fault(ins.text, "cp.async needs a literal copy size", o.file, o.line);
  AsyncCopy copy{};
  copy.copy_bytes = int(ins.operands[2].literal);
  if (copy.copy_bytes != 4 && copy.copy_bytes != 8 && copy.copy_bytes != 16)
    ptx_fault(ins.text, "cp.async copies 4, 8 or 16 bytes", o.file, o.line);
  if (ins.text.rfind("cp.async.cg", 0) == 0 && copy.copy_bytes != 16)
    ptx_fault(ins.text, "cp.async.cg copies 16 bytes only", o.file, o.line);
  copy.source_bytes = copy.copy_bytes;
  if (ins.operands.size() >= 4) {
    const TextOperand& size = ins.operands[3];
    copy.source_bytes = size.kind == TextOperand::Kind::literal ? int(size.literal) : int(o.u32(size.indices.at(0)));
  }
  if (copy.source_bytes < 0 || copy.source_bytes > copy.copy_bytes)
    ptx_fault(ins.text, "a source size of " + std::to_string(copy.source_bytes) + " bytes", o.file, o.line);
  copy.shared_destination = reinterpret_cast<void*>(shared_begin() + uintptr_t(o.u32(dst.indices[0])));
  copy.global_source = reinterpret_cast<const void*>(uintptr_t(o.at(src.indices[0]).value));
  if ((reinterpret_cast<uintptr_t>(copy.shared_destination) % unsigned(copy.copy_bytes)) != 0 ||
      (reinterpret_cast<uintptr_t>(copy.global_source) % unsigned(copy.copy_bytes)) != 0)
    ptx_fault(ins.text, "cp.async operands must be aligned to the copy size", o.file, o.line);
  if (copy.source_bytes == 0) copy.global_source = nullptr;
  async_copy_issue(copy);
}

}  // namespace

void ptx_asm(const char* ptx_text, std::initializer_list<PtxOperand> outputs, std::initializer_list<PtxOperand> inputs,
             const char* file, int line) {
  if (!in_device_code()) fault(std::string("inline PTX executed by host code at ") + file + ":" + std::to_string(line));
  EmulatorScope scope;
  Operands o;
  o.all.assign(outputs.begin(), outputs.end());
  o.all.insert(o.all.end(), inputs.begin(), inputs.end());
  o.ins = &instruction_for(ptx_text, file, line);
  o.file = file;
  o.line = line;
  switch (o.ins->op) {
    case Op::mma_m16n8k16: execute_mma(o, true); break;
    case Op::mma_m16n8k8: execute_mma(o, false); break;
    case Op::ldmatrix: execute_ldmatrix(o); break;
    case Op::cp_async: execute_cp_async(o); break;
    case Op::cp_async_commit: async_copy_commit(); break;
    case Op::cp_async_wait: {
      int pending = 0;
      if (!o.ins->operands.empty()) {
        const TextOperand& n = o.ins->operands[0];
        pending = n.kind == TextOperand::Kind::literal ? int(n.literal) : int(o.at(n.indices.at(0)).value);
      }
      async_copy_wait(pending);
      break;
    }
    case Op::unsupported: break;
  }
}

}  // namespace sg_emu
