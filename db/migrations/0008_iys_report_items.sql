CREATE TABLE `iys_report_items` (
	`event_id` integer PRIMARY KEY NOT NULL,
	`outbox_id` integer NOT NULL,
	`status` text NOT NULL,
	`transaction_id` text,
	`error_code` text,
	`error_message` text,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`event_id`) REFERENCES `consent_events`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`outbox_id`) REFERENCES `outbox`(`id`) ON UPDATE no action ON DELETE no action
);
