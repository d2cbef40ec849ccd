import { describe, expect, it } from 'vitest';
import { releaseOf } from '../src/deploy/release.js';
import { commandWords, releaseCommandConfig } from '../src/deploy/release-command.js';

// A release_command is split as Fly splits it (spaces, quotes group, nothing expanded) and runs
// in a config that is the release's without services or checks, never restarted, and marked as
// Fly marks release command machines.
describe('release_command', () => {
  it('is split at spaces, quotes grouping', () => {
    expect(commandWords('bin/rails db:migrate')).toEqual(['bin/rails', 'db:migrate']);
    expect(commandWords(`node -e "console.log('a b')"  x`)).toEqual([
      'node',
      '-e',
      "console.log('a b')",
      'x',
    ]);
    expect(commandWords(`sh -c 'echo $HOME'`)).toEqual(['sh', '-c', 'echo $HOME']);
    expect(commandWords('a="b c"d')).toEqual(['a=b cd']);
  });

  it('refuses an empty command and an unclosed quote as usage errors', () => {
    for (const bad of ['', '   ', 'echo "open'])
      expect(() => commandWords(bad), bad).toThrow(expect.objectContaining({ exitCode: 2 }));
  });

  it("runs in the release's config without services, checks or restarts", () => {
    const release = releaseOf({
      image: 'shop@sha256:abc',
      env: { A: '1' },
      services: [{ internal_port: 8080, protocol: 'tcp', ports: [] }],
      checks: { alive: { type: 'tcp', port: 8080 } },
      restart: { policy: 'on-failure' },
      metadata: { fly_process_group: 'app' },
    });
    const config = releaseCommandConfig(release, ['node', 'migrate.mjs']);
    expect(config).toEqual({
      image: 'shop@sha256:abc',
      env: { A: '1' },
      init: { exec: ['node', 'migrate.mjs'] },
      restart: { policy: 'no' },
      metadata: {
        fly_process_group: 'fly_app_release_command',
        fly_release_id: release.id,
      },
    });
  });
});
