DROP TABLE mail_suppressions;
DROP TABLE mail_outbox;
