// Storage: one allocation on one device, shared by every view of it.
#pragma once
#include <memory>

#include "engine/common.h"

namespace ofa {

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t nbytes) = 0;
  virtual void deallocate(void* p, size_t nbytes) = 0;
};

// The allocator of a device; CUDA's exists only in CUDA builds.
Allocator* allocator_for(Device d);
bool cuda_available();  // built with CUDA and at least one device visible
int cuda_device_count();

class Storage {
 public:
  Storage(size_t nbytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
};

// Copies between any two devices (host<->device through the CUDA runtime).
void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t nbytes);

}  // namespace ofa
