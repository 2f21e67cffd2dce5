DROP INDEX disposals_recent;
