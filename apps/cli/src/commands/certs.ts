import type { Certificate } from '@fleet/flaps-client';
import { Command } from 'commander';
import { printFields, printJson, printTable, say } from '../output.js';
import { appContext, withApp, withJson } from './shared.js';

function showCertificate(certificate: Certificate): void {
  printFields([
    ['Hostname', certificate.hostname],
    ['App', certificate.app],
    ['Issued', certificate.issued ? 'yes' : 'not yet (on the first TLS handshake at an edge)'],
    ['Expires', certificate.not_after],
    ['Issuer', certificate.issuer],
    ['Names', certificate.subject_alt_names],
    ['SHA-256', certificate.fingerprint_sha256],
  ]);
}

/** `fleet certs add|list|show|remove`: the app's hostnames and their certificates. */
export function certsCommand(): Command {
  const certs = new Command('certs').description("manage an app's hostnames and certificates");

  withJson(withApp(certs.command('list').description("list the app's hostnames"))).action(
    async (_options: unknown, command: Command) => {
      const { flags, app, flaps } = appContext(command);
      const list = await flaps.listCertificates(app);
      if (flags.json) return printJson(list);
      printTable(
        ['HOSTNAME', 'ISSUED', 'EXPIRES'],
        list.map((one) => [one.hostname, one.issued ? 'yes' : 'not yet', one.not_after ?? '']),
      );
    },
  );

  withJson(
    withApp(
      certs
        .command('add')
        .argument('<hostname>', "a name pointed at the fleet's edges (DNS)")
        .description('route a hostname to the app; its certificate is issued on first use'),
    ),
  ).action(async (hostname: string, _options: unknown, command: Command) => {
    const { flags, app, flaps } = appContext(command);
    const certificate = await flaps.addCertificate(app, hostname);
    if (flags.json) return printJson(certificate);
    say(
      `${certificate.hostname} routes to ${app}; its certificate is issued on the first TLS handshake`,
    );
  });

  withJson(
    withApp(
      certs
        .command('show')
        .argument('<hostname>')
        .description('show a hostname and its certificate'),
    ),
  ).action(async (hostname: string, _options: unknown, command: Command) => {
    const { flags, app, flaps } = appContext(command);
    const certificate = await flaps.getCertificate(app, hostname);
    if (flags.json) return printJson(certificate);
    showCertificate(certificate);
  });

  withApp(
    certs
      .command('remove')
      .alias('rm')
      .argument('<hostname>')
      .description('stop routing a hostname, and drop its certificate'),
  ).action(async (hostname: string, _options: unknown, command: Command) => {
    const { app, flaps } = appContext(command);
    await flaps.removeCertificate(app, hostname);
    say(`${hostname} removed from ${app}`);
  });
  return certs;
}
