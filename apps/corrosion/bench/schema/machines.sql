-- The convergence benchmark's table: a machine's routing state, as flyd writes it.
CREATE TABLE machines (
  id TEXT NOT NULL PRIMARY KEY,
  app TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL DEFAULT '',
  region TEXT NOT NULL DEFAULT '',
  updated_at TEXT NOT NULL DEFAULT ''
);
