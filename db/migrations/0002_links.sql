CREATE TABLE `links` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`link_id` text NOT NULL,
	`brand_id` integer NOT NULL,
	`recipient` text NOT NULL,
	`recipient_type` text NOT NULL,
	`type` text NOT NULL,
	`created_at` integer NOT NULL,
	`expires_at` integer,
	FOREIGN KEY (`brand_id`) REFERENCES `brands`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `links_link_id_idx` ON `links` (`link_id`);--> statement-breakpoint
CREATE UNIQUE INDEX `links_brand_id_recipient_recipient_type_type_idx` ON `links` (`brand_id`,`recipient`,`recipient_type`,`type`);