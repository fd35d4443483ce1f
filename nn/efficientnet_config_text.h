#pragma once
// The architecture config as one line of text, stored as a weight file's arch_config attribute so a
// file alone rebuilds its network (slidegrade forward --weights W.h5), and compared on load so a
// checkpoint from another arch is refused.
//
// Format: space-separated key=value pairs, floats printed with 9 significant digits:
//   arch=b0 width=1 depth=1 resolution=224 lite=0 activation=swish padding=symmetric
//   bn_eps=1.00000001e-05 bn_momentum=0.100000001 outputs=1000 pooling=avg dropout=0.200000003
//   drop_connect=0.200000003 mean=0.485,0.456,0.406 std=0.229,0.224,0.225
// Parsing starts from efficientnet_config(arch) and overrides the keys present, so older or
// hand-written lines with fewer keys still load; unknown keys and bad values are errors.
#include <string>
#include <string_view>

#include "core/option_words.h"
#include "nn/efficientnet.h"

namespace sg::nn {

std::string config_text(const EfficientNetConfig& config);
// Throws sg::Error naming the offending key and value; `where` (a file name) prefixes the message.
EfficientNetConfig parse_config_text(std::string_view text, std::string_view where = "arch_config");

// The padding words: symmetric, tf_same (tf-same, same) for TensorFlow's SAME.
inline constexpr OptionWord<Padding> kPaddingWordList[] = {
    {Padding::symmetric, "symmetric"},
    {Padding::tf_same, "tf_same", {"tf-same", "same"}},
};
inline constexpr OptionWords<Padding> kPaddingWords{"padding", kPaddingWordList};
std::string_view padding_name(Padding padding);
Padding parse_padding(std::string_view name);  // parse_word(kPaddingWords, name)

}  // namespace sg::nn
