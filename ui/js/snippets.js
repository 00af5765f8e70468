// snippets.js - how to use a file from its format's own client: Maven's
// dependency, npm install, pip install, docker pull, curl. Derived from the path and the repository's
// package type only.

// groupId:artifactId:version[:classifier]:ext from a Maven path, or null.
export function mavenCoords(path) {
  const p = String(path).split('/');
  if (p.length < 4) return null;
  const file = p[p.length - 1];
  const version = p[p.length - 2];
  const artifactId = p[p.length - 3];
  const groupId = p.slice(0, -3).join('.');
  let base = `${artifactId}-${version}`;
  if (!file.startsWith(base)) {
    // a timestamped SNAPSHOT: artifact-1.0-20261128.002356-1.jar
    const snap = version.endsWith('-SNAPSHOT') ? version.slice(0, -9) : null;
    const m = snap && file.match(new RegExp(`^${artifactId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-${snap.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-\\d{8}\\.\\d{6}-\\d+`));
    if (!m) return null;
    base = m[0];
  }
  const rest = file.slice(base.length);
  const m = rest.match(/^(?:-([^.]+))?\.(.+)$/);
  if (!m || !groupId) return null;
  return { groupId, artifactId, version, classifier: m[1] || '', ext: m[2] };
}

// name and version of an npm tarball path (name/-/base-version.tgz), or null.
export function npmCoords(path) {
  const m = String(path).match(/^((?:@[^/]+\/)?([^/]+))\/-\/(.+)\.tgz$/);
  if (!m) return null;
  const [, name, base, file] = m;
  if (!file.startsWith(`${base}-`)) return null;
  return { name, version: file.slice(base.length + 1) };
}

// [{title, text}] for a file in a repository of packageType.
export function snippets(origin, repo, packageType, path, downloadUri, signedIn) {
  const out = [];
  if (packageType === 'maven') {
    const c = mavenCoords(path);
    if (c && !/\.(sha1|sha256|md5|asc)$/.test(c.ext) && c.ext !== 'pom') {
      const lines = ['<dependency>', `  <groupId>${c.groupId}</groupId>`, `  <artifactId>${c.artifactId}</artifactId>`,
        `  <version>${c.version}</version>`];
      if (c.classifier) lines.push(`  <classifier>${c.classifier}</classifier>`);
      if (c.ext !== 'jar') lines.push(`  <type>${c.ext}</type>`);
      lines.push('</dependency>');
      out.push({ title: 'Maven dependency', text: lines.join('\n') });
      out.push({ title: 'Maven repository', text: `<repository>\n  <id>${repo}</id>\n  <url>${origin}/${repo}</url>\n</repository>` });
    }
  }
  if (packageType === 'npm') {
    const c = npmCoords(path);
    if (c) out.push({ title: 'npm install', text: `npm install ${c.name}@${c.version} --registry ${origin}/api/npm/${repo}/` });
  }
  if (packageType === 'pypi') {
    // <project>/<version>/<file> (docs/pypi.md); not a wheel's .metadata
    const m = String(path).match(/^([^/]+)\/([^/]+)\/[^/]+\.(whl|tar\.gz|zip)$/);
    if (m) out.push({ title: 'pip install', text: `pip install '${m[1]}==${m[2]}' --index-url ${origin}/api/pypi/${repo}/simple/` });
  }
  if (packageType === 'docker') {
    // <image>/_tags/<tag>/manifest.json (docs/oci.md): the registry is the host itself
    const m = String(path).match(/^(.+)\/_tags\/([^/]+)\/manifest\.json$/);
    if (m) out.push({ title: 'docker pull', text: `docker pull ${new URL(origin).host}/${repo}/${m[1]}:${m[2]}` });
  }
  out.push({ title: 'curl', text: `curl ${signedIn ? '-u USER ' : ''}-O '${String(downloadUri).replace(/'/g, "'\\''")}'` });
  return out;
}
