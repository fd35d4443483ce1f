#!/usr/bin/env python3
"""Turns a CUDA source (.cu or .cuh) into host C++ for the emulated CUDA device.

Only the constructs that are not C++ are rewritten; every other character stays where it was, and
a #line directive keeps diagnostics, sanitizer reports and __FILE__/__LINE__ pointing at the
original file and line:

  kernel<<<grid, block[, shared[, stream]]>>>(args)
      -> ::sg_emu::launch(kernel, grid, block[, shared[, stream]])(args)
  asm volatile("ptx" : "=r"(out) : "r"(in) : "memory")
      -> ::sg_emu::ptx_asm("ptx", {::sg_emu::ptx_out("=r", out)}, {::sg_emu::ptx_in("r", in)}, __FILE__, __LINE__)
  __shared__ T name[N];
      -> SG_EMU_SHARED T name[N]; ::sg_emu::note_static_shared(&name, sizeof(name));
  extern __shared__ T name[];
      -> T* const name = ::sg_emu::dynamic_shared<T>();
  __global__ ... kernel(params) {
      -> __global__ ... kernel(params) { SG_EMU_KERNEL_ENTRY(__PRETTY_FUNCTION__, <launch bounds or 0>);

Usage: translate_cuda.py INPUT OUTPUT
"""
import re
import sys


def code_mask(text):
    """True for characters that are code (not inside comments, string or character literals)."""
    mask = [True] * len(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            for k in range(i, j):
                mask[k] = False
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            for k in range(i, j):
                mask[k] = False
            i = j
        elif c == '"' or c == "'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            for k in range(i, min(j + 1, n)):
                mask[k] = False
            i = j + 1
        else:
            i += 1
    return mask


class Source:
    def __init__(self, text):
        self.text = text
        self.mask = code_mask(text)

    def tokens(self, word):
        """Positions of the identifier `word` in code."""
        for m in re.finditer(r"\b%s\b" % re.escape(word), self.text):
            if self.mask[m.start()]:
                yield m.start()

    def matching(self, open_index):
        """Index of the bracket that closes the one at open_index (code only)."""
        pairs = {"(": ")", "[": "]", "{": "}", "<": ">"}
        opening = self.text[open_index]
        closing = pairs[opening]
        depth = 0
        for i in range(open_index, len(self.text)):
            if not self.mask[i]:
                continue
            if self.text[i] == opening:
                depth += 1
            elif self.text[i] == closing:
                depth -= 1
                if depth == 0:
                    return i
        raise SyntaxError("unbalanced %r at offset %d" % (opening, open_index))

    def skip_space(self, i):
        while i < len(self.text) and (self.text[i].isspace() or not self.mask[i]):
            i += 1
        return i


def split_top_level(text, separator):
    """Splits at `separator` outside brackets and literals. At the top level of an asm statement
    every ':' separates sections (operand expressions, where '::' may appear, are in parentheses)."""
    mask = code_mask(text)
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        c = text[i]
        if mask[i]:
            if c in "([{":
                depth += 1
            elif c in ")]}":
                depth -= 1
            elif c == separator and depth == 0:
                parts.append(text[start:i])
                start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def keep_lines(original, replacement):
    """The replacement followed by as many newlines as the original span had, so lines stay put."""
    return replacement + "\n" * original.count("\n")


def translate_asm(src, edits):
    for start in src.tokens("asm"):
        i = src.skip_space(start + 3)
        for qualifier in ("volatile", "__volatile__"):
            if src.text.startswith(qualifier, i):
                i = src.skip_space(i + len(qualifier))
        if src.text[i] != "(":
            continue
        close = src.matching(i)
        body = src.text[i + 1 : close]
        sections = split_top_level(body, ":")
        template = sections[0].strip()
        outputs = sections[1] if len(sections) > 1 else ""
        inputs = sections[2] if len(sections) > 2 else ""

        def operands(section, maker):
            result = []
            for operand in split_top_level(section, ","):
                operand = " ".join(operand.split())
                if not operand:
                    continue
                m = re.match(r'^("[^"]*")\s*\((.*)\)$', operand, re.S)
                if not m:
                    raise SyntaxError("asm operand not understood: %r" % operand)
                result.append("::sg_emu::%s(%s, %s)" % (maker, m.group(1), m.group(2)))
            return ", ".join(result)

        call = "::sg_emu::ptx_asm(%s, {%s}, {%s}, __FILE__, __LINE__)" % (
            " ".join(template.split()),
            operands(outputs, "ptx_out"),
            operands(inputs, "ptx_in"),
        )
        original = src.text[start : close + 1]
        edits.append((start, close + 1, keep_lines(original, call)))


def translate_launches(src, edits):
    for m in re.finditer(r"<<<", src.text):
        start = m.start()
        if not src.mask[start]:
            continue
        end = src.text.find(">>>", start)
        config = src.text[start + 3 : end]
        # The kernel expression before <<<: an identifier, possibly qualified, with template arguments.
        k = start - 1
        while k >= 0 and src.text[k].isspace():
            k -= 1
        if src.text[k] == ">":
            depth = 0
            while k >= 0:
                c = src.text[k]
                if src.mask[k]:
                    if c in ">)":
                        depth += 1
                    elif c in "<(":
                        depth -= 1
                        if depth == 0:
                            k -= 1
                            break
                k -= 1
        while k >= 0 and (src.text[k].isalnum() or src.text[k] in "_:"):
            k -= 1
        kernel_start = k + 1
        kernel = src.text[kernel_start:start].strip()
        original = src.text[kernel_start : end + 3]
        edits.append((kernel_start, end + 3, keep_lines(original, "::sg_emu::launch(%s, %s)" % (kernel, " ".join(config.split())))))


def translate_shared(src, edits):
    for start in src.tokens("__shared__"):
        semicolon = start
        while src.text[semicolon] != ";" or not src.mask[semicolon]:
            semicolon += 1
        # Is it `extern __shared__`?
        before = src.text[:start].rstrip()
        is_extern = before.endswith("extern")
        declaration = src.text[start + len("__shared__") : semicolon]
        declaration = re.sub(r"__align__\s*\([^)]*\)", " ", declaration)
        bracket = declaration.find("[")
        head = declaration[:bracket] if bracket >= 0 else declaration.split("=")[0]
        m = re.search(r"([A-Za-z_]\w*)\s*$", head)
        if not m:
            raise SyntaxError("__shared__ declaration not understood: %r" % declaration)
        name = m.group(1)
        type_text = " ".join(head[: m.start()].split())
        if is_extern:
            extern_start = len(before) - len("extern")
            original = src.text[extern_start : semicolon + 1]
            replacement = "%s* const %s = ::sg_emu::dynamic_shared<%s>();" % (type_text, name, type_text)
            edits.append((extern_start, semicolon + 1, keep_lines(original, replacement)))
        else:
            edits.append((start, start + len("__shared__"), "SG_EMU_SHARED"))
            edits.append((semicolon + 1, semicolon + 1, " ::sg_emu::note_static_shared(&%s, sizeof(%s));" % (name, name)))


def translate_kernels(src, edits):
    for start in src.tokens("__global__"):
        i = start + len("__global__")
        bounds = "0"
        name_paren = None
        while i < len(src.text):
            if not src.mask[i]:
                i += 1
                continue
            if src.text.startswith("__launch_bounds__", i):
                open_paren = src.text.index("(", i)
                close = src.matching(open_paren)
                bounds = split_top_level(src.text[open_paren + 1 : close], ",")[0].strip()
                i = close + 1
                continue
            if src.text[i] == "(":
                name_paren = i
                break
            i += 1
        close = src.matching(name_paren)
        j = close + 1
        while j < len(src.text) and (src.text[j] not in "{;" or not src.mask[j]):
            j += 1
        if src.text[j] == "{":
            edits.append((j + 1, j + 1, " SG_EMU_KERNEL_ENTRY(__PRETTY_FUNCTION__, %s);" % bounds))


def translate(text, path):
    src = Source(text)
    edits = []
    translate_asm(src, edits)
    translate_launches(src, edits)
    translate_shared(src, edits)
    translate_kernels(src, edits)
    edits.sort(key=lambda e: (e[0], e[1]))
    for a, b in zip(edits, edits[1:]):
        if b[0] < a[1]:
            raise SyntaxError("overlapping rewrites at offsets %d and %d" % (a[0], b[0]))
    out = text
    for begin, end, replacement in reversed(edits):
        out = out[:begin] + replacement + out[end:]
    return '#line 1 "%s"\n' % path + out


def main():
    source, target = sys.argv[1], sys.argv[2]
    with open(source, encoding="utf-8") as f:
        text = f.read()
    try:
        result = translate(text, source)
    except SyntaxError as e:
        sys.exit("%s: %s" % (source, e))
    with open(target, "w", encoding="utf-8") as f:
        f.write(result)


if __name__ == "__main__":
    main()
