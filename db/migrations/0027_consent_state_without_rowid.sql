-- Custom SQL migration file, put your code below! --
-- consent_state keyed by its primary key alone (WITHOUT ROWID): the row lives in the key's b-tree,
-- so writing a state row is one b-tree insert instead of two (the rowid table and the key's index),
-- and reading one by its key one search. drizzle-kit cannot say WITHOUT ROWID (db/schema/ledger.ts):
-- a migration it generates that rebuilds this table must keep the clause.
CREATE TABLE `__new_consent_state` (
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
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `__new_consent_state` (`brand_id`, `recipient`, `recipient_type`, `type`, `status`, `source`, `consent_date`, `retailer_code`, `in_iys`, `event_id`, `updated_at`)
	SELECT `brand_id`, `recipient`, `recipient_type`, `type`, `status`, `source`, `consent_date`, `retailer_code`, `in_iys`, `event_id`, `updated_at` FROM `consent_state`;
--> statement-breakpoint
DROP TABLE `consent_state`;
--> statement-breakpoint
ALTER TABLE `__new_consent_state` RENAME TO `consent_state`;
