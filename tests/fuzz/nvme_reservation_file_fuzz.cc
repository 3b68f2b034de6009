// libFuzzer target: the PTPL reservation file parser (decode_reservation_file)
// over arbitrary bytes. A refusal must say why; an accepted file must satisfy
// the state's invariants and survive encode + decode unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>

#include "nvme/spec/nvme_reservation.hh"
#include "nvme/target/reservation_file.hh"

using namespace ioe::nvme;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string err;
    auto v = decode_reservation_file(std::span(reinterpret_cast<const std::byte*>(data), size), err);
    if (!v) {
        if (err.empty()) std::abort();  // a refusal always says why
        return 0;
    }
    if (v->count > reservation_view::max_registrants) std::abort();
    if (v->type != rtype::none && !all_registrants_type(v->type) && !v->registered(v->holder)) std::abort();
    // What we accept we can write and read back to the same state.
    auto again = encode_reservation_file(*v);
    auto w = decode_reservation_file(again, err);
    if (!w || w->count != v->count || w->type != v->type || w->generation != v->generation) std::abort();
    return 0;
}
