DROP INDEX tombstones_disposal;
