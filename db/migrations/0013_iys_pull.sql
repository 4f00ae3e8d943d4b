CREATE TABLE `iys_pull_cursors` (
	`brand_id` integer PRIMARY KEY NOT NULL,
	`after` text,
	`movements` integer DEFAULT 0 NOT NULL,
	`pulled_at` integer,
	`last_error` text,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`brand_id`) REFERENCES `brands`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `iys_pulled_movements` (
	`event_id` integer PRIMARY KEY NOT NULL,
	`transaction_id` text NOT NULL,
	`creation_date` integer,
	FOREIGN KEY (`event_id`) REFERENCES `consent_events`(`id`) ON UPDATE no action ON DELETE no action
);
