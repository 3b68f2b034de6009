// libFuzzer: blockstamp's log decoder and block check over arbitrary bytes
// (a log file or a block read back from a disk). Never crashes; a decoded
// log encodes back to text that decodes to the same log.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tests/cluster/stamp.hh"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace ioe::blockstamp;
    std::string err;
    auto log = decode_log(std::string_view(reinterpret_cast<const char*>(data), size), err);
    if (log && log->block_count <= 4096) {
        auto again = decode_log(encode_log(*log), err);
        if (!again || encode_log(*again) != encode_log(*log)) std::abort();
    }
    if (size >= 64) {
        const auto* b = reinterpret_cast<const std::byte*>(data);
        const auto bs = static_cast<std::uint32_t>(size);
        (void)check_block(b, bs, 0);
    }
    return 0;
}
