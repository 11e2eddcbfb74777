// Loaded into the compute worker (importScripts) before WebGPU starts. It
// keeps the GPUDevice that the worker's WebGPU code asks for, so the worker
// can watch for its loss (`device.lost`: a driver reset, a GPU unplugged) and
// move to the CPU, and so a test can lose it for real with
// `self.cliplensGpuDevice.destroy()`. Nothing else is touched.
(() => {
  if (typeof GPUAdapter === 'undefined') return;
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const device = await requestDevice.apply(this, args);
    self.cliplensGpuDevice = device;
    device.lost.then((info) => {
      if (typeof self.cliplensOnDeviceLost === 'function') self.cliplensOnDeviceLost(`${info.reason}: ${info.message}`);
    });
    return device;
  };
})();
