// NVMe Qualified Names (NVM Express Base 2.0, "NVMe Qualified Names"):
// check_nqn() says why a string is not a valid subsystem NQN, or "" when
// it is. The two forms: "nqn.YYYY-MM.<reverse domain>:<anything>" and
// "nqn.2014-08.org.nvmexpress:uuid:<8-4-4-4-12 hex UUID>"; at most 223
// bytes of UTF-8, no spaces or control characters; the discovery
// subsystem's NQN is reserved.
#pragma once

#include <string>
#include <string_view>

namespace ioe::nvme {

std::string check_nqn(std::string_view nqn);

}  // namespace ioe::nvme
