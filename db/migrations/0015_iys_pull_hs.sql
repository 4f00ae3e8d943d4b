ALTER TABLE `iys_pull_cursors` ADD `hs_after` text;--> statement-breakpoint
ALTER TABLE `iys_pull_cursors` ADD `hs_movements` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `iys_pull_cursors` ADD `hs_pulled_at` integer;--> statement-breakpoint
ALTER TABLE `iys_pull_cursors` ADD `hs_last_error` text;