CREATE TABLE `outbox_reopened` (
	`seq` integer PRIMARY KEY NOT NULL,
	`outbox_id` integer NOT NULL,
	`at` integer NOT NULL
);
