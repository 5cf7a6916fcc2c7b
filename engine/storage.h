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

// The allocator of a device (CUDA: the caching allocator of engine/cuda_context.h).
Allocator* allocator_for(Device d);
// At least one CUDA device: a GPU, or the CPU emulation when OFA_CUDA_EMULATION=1.
bool cuda_available();
int cuda_device_count();

class Storage {
 public:
  Storage(size_t nbytes, Device device);
  // With a given allocator (pinned host memory for a CPU storage).
  Storage(size_t nbytes, Device device, Allocator* alloc);
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
  Allocator* alloc_ = nullptr;
};

// Copies between any two devices (host<->device through the CUDA backend, on
// the device's compute stream, waiting for it: the data is there on return).
void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t nbytes);

}  // namespace ofa
