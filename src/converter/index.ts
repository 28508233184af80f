/**
 * The on-device converter: published ClipCap and CLIP checkpoints + a graph template -> a model pack
 * (docs/model-install.md, sections 3 and 4). No extension APIs, so it runs in Node tests too.
 */
export { convertPack, DEFAULT_CHUNK_BYTES, type ConvertArgs, type ConvertStats, type PackMeta, type PackSink } from './convert';
export { checkInputs, describeCheckpoint, findCheckpointProblems, type CheckpointProblems, type ConverterCheckpoint } from './check-inputs';
export { parseTemplate, templateGraphBytes, type GraphRole, type Piece, type Template, type TemplateGraph, type TemplateInput } from './template';
export { Sha256Stream } from './sha256-stream';
