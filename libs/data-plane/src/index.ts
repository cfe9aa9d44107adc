export * from './caller-schema';
export * from './data-plane.module';
export * from './data-plane.service';
export * from './policy-cache.service';
export { DataPlaneRecorder } from './data-plane-recorder';
export { sealCursor } from './cursor';
export { NodeJsonWriter, type NodeTexts } from './node-json';
export { subjectReleasesSql } from './subject-access.service';
export { FORMULA_START, type FormulaHandling, exportSql } from './export-sql';
