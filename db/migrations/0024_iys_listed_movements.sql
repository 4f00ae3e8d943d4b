CREATE TABLE `iys_listed_movements` (
	`transaction_id` text PRIMARY KEY NOT NULL,
	`brand_id` integer NOT NULL,
	`creation_date` integer,
	`recipient` text NOT NULL,
	`recipient_type` text NOT NULL,
	`type` text NOT NULL,
	`status` text NOT NULL,
	`consent_date` text,
	`source` text,
	FOREIGN KEY (`brand_id`) REFERENCES `brands`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `iys_listed_movements_brand_id_creation_date_idx` ON `iys_listed_movements` (`brand_id`,`creation_date`);