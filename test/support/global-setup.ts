/** Once per test run: what the AWS SDK would otherwise warn about in every test process. */
export default function setup(): void {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 22) {
    process.stderr.write(
      `Node ${process.version}: AWS SDK releases after the first week of January 2027 need Node 22; this project works on 20.19+ (see README).\n`,
    );
  }
}
