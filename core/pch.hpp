// The precompiled header of every library object (Makefile: PCH): the
// standard headers most files use, and fmt. Parsing them was about half of
// each -O0 compile and a third of each -O2 one. Only headers that nearly
// every file needs and that never change go here; a file still includes
// what it uses (the build with PCH=0 checks that).

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>
