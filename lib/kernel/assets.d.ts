// Files that scripts/build.ts puts in build/ and `bun build --compile` embeds: importing one
// `with { type: "file" }` gives a path that Bun.file() reads, in and out of the compiled binary.
declare module "*.bpf.o" {
  const path: string;
  export default path;
}
declare module "*.so" {
  const path: string;
  export default path;
}
