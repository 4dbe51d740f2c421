// The precompiled header of the unit-test objects (Makefile: PCH): the
// library's, plus doctest. Not for tests/main.cpp, which includes doctest
// with DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN.

#include "core/pch.hpp"

#include <doctest/doctest.h>
