// Dawn on the device without ORT: request a device, run a compute shader (x*2 over 1M floats), read it back.
import { create, globals } from 'webgpu';
Object.assign(globalThis, globals);
const gpu = create([]);
const a = await gpu.requestAdapter();
console.log('[probe] adapter', a?.info?.vendor, a?.info?.device);
const d = await a.requestDevice({
  requiredLimits: { maxStorageBufferBindingSize: a.limits.maxStorageBufferBindingSize, maxBufferSize: a.limits.maxBufferSize },
});
console.log('[probe] device ok');
const n = 1 << 20,
  bytes = n * 4;
const src = d.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
new Float32Array(src.getMappedRange()).set(Float32Array.from({ length: n }, (_, i) => i));
src.unmap();
const rd = d.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
const m = d.createShaderModule({
  code: '@group(0) @binding(0) var<storage, read_write> x: array<f32>; @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) { x[g.x] = x[g.x] * 2.0; }',
});
const p = d.createComputePipeline({ layout: 'auto', compute: { module: m, entryPoint: 'main' } });
const bg = d.createBindGroup({ layout: p.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: src } }] });
const e = d.createCommandEncoder();
const c = e.beginComputePass();
c.setPipeline(p);
c.setBindGroup(0, bg);
c.dispatchWorkgroups(n / 64);
c.end();
e.copyBufferToBuffer(src, 0, rd, 0, bytes);
d.queue.submit([e.finish()]);
await rd.mapAsync(GPUMapMode.READ);
const r = new Float32Array(rd.getMappedRange());
console.log('[probe] compute ok:', r[12345] === 24690, r[n - 1] === (n - 1) * 2);
process.exit(0);
