CREATE TABLE `brand_numbers` (
	`number_id` integer NOT NULL,
	`brand_id` integer NOT NULL,
	`position` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`number_id`, `brand_id`),
	FOREIGN KEY (`number_id`) REFERENCES `numbers`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`brand_id`) REFERENCES `brands`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `brand_numbers_brand_id_idx` ON `brand_numbers` (`brand_id`);--> statement-breakpoint
CREATE TABLE `brands` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`code` text NOT NULL,
	`name` text NOT NULL,
	`iys_code` text,
	`brand_code` text,
	`short_names` text DEFAULT '[]' NOT NULL,
	`settings` text DEFAULT '{}' NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `brands_code_idx` ON `brands` (`code`);--> statement-breakpoint
CREATE TABLE `numbers` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`number` text NOT NULL,
	`provider` text NOT NULL,
	`channels` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `numbers_number_idx` ON `numbers` (`number`);--> statement-breakpoint
CREATE TABLE `partners` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`brand_id` integer NOT NULL,
	`retailer_code` text NOT NULL,
	`name` text NOT NULL,
	`url` text,
	`secret_enc` text,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`brand_id`) REFERENCES `brands`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `partners_brand_id_retailer_code_idx` ON `partners` (`brand_id`,`retailer_code`);--> statement-breakpoint
CREATE TABLE `receipts` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`channel` text NOT NULL,
	`provider` text NOT NULL,
	`provider_ref` text NOT NULL,
	`number_id` integer,
	`from_address` text,
	`to_address` text,
	`body` text,
	`payload` text DEFAULT '{}' NOT NULL,
	`status` text DEFAULT 'received' NOT NULL,
	`result` text,
	`received_at` integer NOT NULL,
	`applied_at` integer,
	FOREIGN KEY (`number_id`) REFERENCES `numbers`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `receipts_channel_provider_ref_idx` ON `receipts` (`channel`,`provider`,`provider_ref`);--> statement-breakpoint
CREATE INDEX `receipts_pending_idx` ON `receipts` (`received_at`) WHERE status = 'received';--> statement-breakpoint
CREATE TABLE `consent_events` (
	`id` integer PRIMARY KEY NOT NULL,
	`brand_id` integer NOT NULL,
	`recipient` text NOT NULL,
	`recipient_type` text NOT NULL,
	`type` text NOT NULL,
	`status` text NOT NULL,
	`source` text,
	`consent_date` integer,
	`retailer_code` text,
	`origin` text NOT NULL,
	`receipt_id` integer,
	`idempotency_key` text,
	`effect` text NOT NULL,
	`received_at` integer NOT NULL,
	`prev_hash` text NOT NULL,
	`hash` text NOT NULL,
	FOREIGN KEY (`brand_id`) REFERENCES `brands`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`receipt_id`) REFERENCES `receipts`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `consent_events_idempotency_key_idx` ON `consent_events` (`idempotency_key`);--> statement-breakpoint
CREATE INDEX `consent_events_brand_id_recipient_idx` ON `consent_events` (`brand_id`,`recipient`);--> statement-breakpoint
CREATE INDEX `consent_events_received_at_idx` ON `consent_events` (`received_at`);--> statement-breakpoint
CREATE TABLE `consent_state` (
	`brand_id` integer NOT NULL,
	`recipient` text NOT NULL,
	`recipient_type` text NOT NULL,
	`type` text NOT NULL,
	`status` text NOT NULL,
	`source` text,
	`consent_date` integer,
	`retailer_code` text,
	`in_iys` integer NOT NULL,
	`event_id` integer NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`brand_id`, `recipient`, `recipient_type`, `type`),
	FOREIGN KEY (`brand_id`) REFERENCES `brands`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`event_id`) REFERENCES `consent_events`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `ledger_checkpoints` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`event_id` integer NOT NULL,
	`hash` text NOT NULL,
	`jws` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `outbox` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`kind` text NOT NULL,
	`event_id` integer,
	`receipt_id` integer,
	`target` text,
	`status` text DEFAULT 'pending' NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`last_error` text,
	`result` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`event_id`) REFERENCES `consent_events`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`receipt_id`) REFERENCES `receipts`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `outbox_pending_idx` ON `outbox` (`created_at`) WHERE status = 'pending';--> statement-breakpoint
CREATE INDEX `outbox_event_id_idx` ON `outbox` (`event_id`);