// SGL construction: describes the data of one NVMe read or write (a byte
// range of the caller's io_vecs) as a scatter gather list, for controllers
// that support SGLs (Identify Controller SGLS bits 1:0 not 00b).
//
// The rules used here (NVMe base specification, "Scatter Gather List"):
// * A Data Block descriptor (type 0h, sub type 0h: an address) describes one
//   contiguous range of bus addresses, of any length up to 4 GiB - 1.
// * One descriptor fits in the SQE's DPTR: a transfer that is contiguous in
//   bus addresses goes as a single Data Block descriptor there.
// * More than one: DPTR holds a Last Segment descriptor (type 3h) giving the
//   bus address and the length in bytes (16 per descriptor) of an SGL
//   segment, an array of Data Block descriptors in the command slot's list
//   page (preallocated DMA memory, Qword aligned: nothing is allocated on the
//   I/O path). At most sgl_list_entries descriptors per command; beyond that
//   the command stops at the last block boundary and the caller sends the
//   rest as another command, as for an MDTS split. Segment descriptors
//   (type 2h, chaining further segments) are never needed then.
// * Descriptor lengths add up exactly to the transfer (no oversize SGLs:
//   SGLS bit 18 is not required).
// * With "dword alignment and granularity" (SGLS bits 1:0 = 10b) every Data
//   Block's address and length must be multiples of 4: a piece that breaks
//   that ends the command before it (or is refused when it is the first).
//   With byte alignment (01b) any address and length go.
// Unlike PRPs, pieces need not start or end on memory pages: buffers that
// PRPs could only describe in several commands go in one. Bus addresses are
// translated per 2 MiB chunk of the DMA pool and adjacent runs that are
// contiguous in bus addresses are merged into one descriptor.
#pragma once

#include <cstdint>

#include "nvme/pcie/controller_bus.hh"
#include "nvme/pcie/identify_parse.hh"
#include "nvme/pcie/prp.hh"
#include "nvme/spec/nvme_spec.hh"
#include "storage/block_device.hh"

namespace ioe::nvme {

inline constexpr unsigned sgl_list_entries = prp_page_bytes / sizeof(sgl_descriptor);


struct sgl_result {
    sgl_descriptor dptr{};    // for the SQE's DPTR (with PSDT = 01b)
    std::uint32_t bytes = 0;  // how much of the request this command covers (whole blocks)
    unsigned descriptors = 0; // Data Block descriptors used (1: in DPTR; more: in the list)
    prp_error error = prp_error::none;  // same meanings as for PRPs
};

// Describes up to `max_bytes` of iov starting `offset` bytes in, in whole
// blocks of `block_bytes`. More than one descriptor goes to `list`
// (sgl_list_entries entries, Qword aligned), whose bus address is `list_bus`.
// `support` must not be none.
sgl_result build_sgl(const controller_bus& bus, io_vecs iov, std::uint64_t offset, std::uint32_t max_bytes,
                     std::uint32_t block_bytes, sgl_support support, sgl_descriptor* list,
                     std::uint64_t list_bus) noexcept;

}  // namespace ioe::nvme
