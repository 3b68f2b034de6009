// Actor base: owner shard and the in-flight call accounting (see actor.hh).
#include "actors/actor.hh"

#include <cassert>

namespace ioe {

actor::actor(std::string name) : _owner(this_shard_id()), _name(std::move(name)) {}

actor::~actor() { assert(_in_flight == 0 && "an actor was destroyed with calls in flight"); }

void actor::call_finished() noexcept {
    assert(_in_flight > 0);
    if (--_in_flight == 0 && _drained) {
        _drained->set_value();
    }
}

future<> actor::close() {
    _closing = true;
    if (_in_flight == 0) {
        co_return;
    }
    _drained.emplace();
    co_await _drained->get_future();
    _drained.reset();
}

}  // namespace ioe
