// libFuzzer target: the state file decoder (rpc/node_state.cc) on arbitrary
// bytes; whatever decodes must encode and decode back to the same state.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "rpc/node_state.hh"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string err;
    auto s = ioe::rpc::decode_state(std::string_view(reinterpret_cast<const char*>(data), size), err);
    if (!s) return 0;
    auto again = ioe::rpc::decode_state(ioe::rpc::encode_state(*s), err);
    if (!again || !(*again == *s)) std::abort();
    return 0;
}
